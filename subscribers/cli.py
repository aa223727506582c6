"""`flask directory import` (being written)."""
import click
from flask.cli import AppGroup

directory_cli = AppGroup("directory", help="Kreise und Gemeinden.")
