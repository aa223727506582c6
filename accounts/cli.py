"""`flask users` (being written)."""
from flask.cli import AppGroup

users_cli = AppGroup("users", help="Benutzerkonten.")
