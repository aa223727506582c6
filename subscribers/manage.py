"""Coordinator pages for a district's subscriber list."""
from flask import Blueprint

bp = Blueprint("manage", __name__)
