"""Shared plumbing: configuration, database, queue, mail transport, i18n, errors."""
