"""District scoping is one mechanism in the query layer: it must hold for every
kind of ORM statement, not only for the views that remember it."""
import pytest
from sqlalchemy import delete, func, select, update

from core.database import load_or_404, set_district_scope
from core.extensions import db
from directory.models import District, Municipality


@pytest.fixture
def scoped_to_boeblingen(app, two_districts):
    with app.test_request_context():
        set_district_scope(["08115"])
        yield
    db.session.rollback()


def test_select_sees_only_the_scope(scoped_to_boeblingen):
    assert db.session.execute(select(District.key)).scalars().all() == ["08115"]
    assert db.session.execute(select(func.count()).select_from(Municipality)).scalar_one() == 2


def test_relationship_loads_are_scoped(scoped_to_boeblingen):
    municipality = db.session.execute(select(Municipality).where(Municipality.ags == "08115045")).scalar_one()
    assert municipality.district.key == "08115"
    assert db.session.execute(select(Municipality).where(Municipality.ags == "08116019")).scalar_one_or_none() is None


def test_joined_rows_of_other_districts_stay_hidden(scoped_to_boeblingen):
    rows = db.session.execute(select(Municipality.ags).join(District)).scalars().all()
    assert sorted(rows) == ["08115003", "08115045"]


def test_load_or_404_refuses_other_district(scoped_to_boeblingen):
    from werkzeug.exceptions import NotFound

    assert load_or_404(District, key="08115").name == "Böblingen"
    with pytest.raises(NotFound):
        load_or_404(District, key="08116")


def test_bulk_update_and_delete_cannot_touch_other_district(app, scoped_to_boeblingen):
    db.session.execute(update(Municipality).values(name="x"))
    db.session.execute(delete(Municipality).where(Municipality.ags == "08116019"))
    db.session.commit()
    set_district_scope(None)
    names = dict(db.session.execute(select(Municipality.ags, Municipality.name)).all())
    assert names["08115003"] == "x"
    assert names["08116019"] == "Esslingen am Neckar, Stadt"


def test_identity_map_does_not_leak_across_scope(app, two_districts):
    with app.test_request_context():
        esslingen = db.session.execute(select(District).where(District.key == "08116")).scalar_one()
        assert esslingen is not None
        set_district_scope(["08115"])
        # The row is in the session's identity map, yet a SELECT must not return it.
        assert db.session.execute(select(District).where(District.key == "08116")).scalar_one_or_none() is None


def test_no_scope_outside_requests(app, two_districts):
    # CLI commands and jobs run without a request: they see every district.
    assert db.session.execute(select(func.count()).select_from(District)).scalar_one() == 2


def test_coordinator_without_matching_scope_sees_nothing(app, two_districts):
    with app.test_request_context():
        set_district_scope([])
        assert db.session.execute(select(District)).scalars().all() == []
