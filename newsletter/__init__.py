"""Newsletters: composing in MJML, the sending pipeline and tracking."""
