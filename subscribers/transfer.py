"""Coordinator pages for CSV import (with preview) and export of a district's list."""
from flask import Blueprint

bp = Blueprint("transfer", __name__)
