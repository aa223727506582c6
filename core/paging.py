"""One page of a longer list, and the range every id and page number must lie in.

Ids are INTEGER columns, 32 bits on PostgreSQL. A number beyond that range
cannot name a row, and handing it to the database or to an OFFSET ends in an
overflow (a 500) instead of "not found". So every way a number enters the app
is bounded here once: `IntegerConverter` is registered as the app's `int`
URL converter (an out-of-range id in a URL does not match: 404), the API's
schema fields take `MAX_INT` from here (422), and `paginate` clamps the page
number of the HTML lists.
"""
import math
from dataclasses import dataclass

from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter as _WerkzeugIntegerConverter

from core.extensions import db

# The largest value of an SQL INTEGER (PostgreSQL's 4 bytes); ids start at 1.
MAX_INT = 2**31 - 1


class IntegerConverter(_WerkzeugIntegerConverter):
    """Werkzeug's `int` converter, bounded by the database's integer range unless a rule says otherwise.

    A URL with a bigger number does not match its rule, so it answers 404 like
    any unknown id. The minimum stays Werkzeug's (0, as a list index may be).
    """

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_INT, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app):
    """Make the bounded converter the `int` of every route (also the API's, and its OpenAPI parameters)."""
    app.url_map.converters["int"] = IntegerConverter


@dataclass
class Page:
    items: list
    number: int
    pages: int
    total: int
    per_page: int = 50

    @property
    def has_previous(self):
        return self.number > 1

    @property
    def has_next(self):
        return self.number < self.pages

    @property
    def first(self):
        """Position of the first item shown (1-based; 0 when the list is empty)."""
        return (self.number - 1) * self.per_page + 1 if self.total else 0

    @property
    def last(self):
        return (self.number - 1) * self.per_page + len(self.items)


def paginate(query, requested, per_page=50):
    """One page of a SELECT; a page number out of range shows the nearest page, never an error."""
    total = db.session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    pages = max(1, math.ceil(total / per_page))
    number = min(max(requested or 1, 1), pages)  # also for a number beyond MAX_INT
    items = db.session.execute(query.limit(per_page).offset((number - 1) * per_page)).scalars().all()
    return Page(items=items, number=number, pages=pages, total=total, per_page=per_page)
