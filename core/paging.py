"""One page of a longer list, for pages that show lists in chunks."""
import math
from dataclasses import dataclass

from sqlalchemy import func, select

from core.extensions import db


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
    number = min(max(requested or 1, 1), pages)
    items = db.session.execute(query.limit(per_page).offset((number - 1) * per_page)).scalars().all()
    return Page(items=items, number=number, pages=pages, total=total, per_page=per_page)
