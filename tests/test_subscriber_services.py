"""Rules of the list that pages and API only reach indirectly."""
from core.extensions import db
from subscribers import services
from subscribers.models import Subscriber


def test_sendable_subscribers_are_the_active_unsuppressed_ones(two_districts, make_subscriber, make_topic):
    topic = make_topic("DMS")
    make_subscriber("aktiv@boeblingen.de", topics=[topic])
    make_subscriber("ohne-thema@boeblingen.de")
    for status in ("pending", "unsubscribed", "bounced", "complained", "erased"):
        make_subscriber(f"{status}@boeblingen.de", status=status)
    make_subscriber("esslingen@esslingen.de", district_key="08116")
    everyone = [s.email for s in services.sendable_subscribers("08115")]
    assert sorted(everyone) == ["aktiv@boeblingen.de", "ohne-thema@boeblingen.de"]
    with_topic = services.sendable_subscribers("08115", services.SubscriberFilter(topic=topic.id))
    assert [s.email for s in with_topic] == ["aktiv@boeblingen.de"]


def test_an_active_row_on_the_suppression_list_is_not_sendable(two_districts, make_subscriber):
    # Defence in depth: should a row ever be active while suppressed, no list mail goes to it.
    subscriber = make_subscriber("alt@boeblingen.de")
    services.suppress("08115", subscriber.email_key, "bounced")
    db.session.commit()
    assert db.session.get(Subscriber, subscriber.id).status == "active"
    assert services.sendable_subscribers("08115") == []


def test_addresses_are_one_per_district_whatever_their_case(two_districts, make_subscriber):
    import pytest

    make_subscriber("Anna.Beispiel@Boeblingen.de")
    with pytest.raises(services.SubscriberError):
        make_subscriber("anna.beispiel@boeblingen.DE")
    db.session.rollback()
    make_subscriber("anna.beispiel@boeblingen.de", district_key="08116", ags="08116019")  # another district's list
