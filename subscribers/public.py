"""Public pages for municipal staff: subscribe, confirm, preferences, unsubscribe."""
from flask import Blueprint

bp = Blueprint("public", __name__)
