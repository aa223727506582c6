"""The workers' part of reach: bringing the rollup up to date between page views."""
from core.extensions import db
from reach import rollup


def reconcile():
    """Turn the dirty marks the triggers left into touches and buckets (every worker, every few seconds).

    Safe to run anywhere and any number of times: marks are taken atomically,
    and a failure rolls back with them, so the next run tries again.
    """
    count = rollup.refresh()
    db.session.commit()
    return count
