"""Absolute links for mails, built from BASE_URL.

Jobs and CLI commands have no request to take the host from, and links in
mails must point at the public address even when a request came in through
an internal one.
"""
from urllib.parse import urlsplit

from flask import current_app


def external_url(endpoint, **values):
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


def base_host():
    return urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"
