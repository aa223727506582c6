"""Districts, municipalities and (later) the subscriber lists."""
