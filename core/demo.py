"""`flask demo`: the real Landkreis Böblingen, its 26 municipalities and a map, to look around in.

Each seed step is idempotent, so running the command again is harmless and
later packages (subscribers, newsletters, events) add their step to
`demo_command` in the same shape: look for what is already there, add only
what is missing, never commit themselves.
"""
import click
from flask_babel import gettext as _
from sqlalchemy import select

from accounts.services import AccountError, create_user, find_user
from core.database import needs_schema
from core.extensions import db
from core.urls import external_url
from directory.cli import directory_file_options, echo_result, import_or_exit, import_shipped_or_exit
from directory.importer import DistrictRow
from directory.models import District

DEMO_DISTRICT = DistrictRow("08115", "Böblingen", "Landkreis")
DEMO_COORDINATOR = "koordination@demo.invalid"
DEMO_TOPICS = ["service-bw", "DMS", "E-Rechnung", "OZG"]
# (address, name, AGS, topics, status): .example is reserved and never receives mail.
DEMO_SUBSCRIBERS = [
    ("hauptamt@boeblingen.example", "Petra Maier", "08115003", ["service-bw", "OZG"], "active"),
    ("it@boeblingen.example", "Jonas Weber", "08115003", ["DMS"], "active"),
    ("kaemmerei@ehningen.example", "Sabine Koch", "08115013", ["E-Rechnung"], "active"),
    ("buergerbuero@herrenberg.example", "Murat Yilmaz", "08115021", ["service-bw"], "active"),
    ("digitalisierung@sindelfingen.example", "Laura Fischer", "08115045", ["DMS", "OZG"], "active"),
    ("rathaus@magstadt.example", "Thomas Braun", "08115029", [], "pending"),
    ("verwaltung@renningen.example", "Eva Schulz", "08115041", ["E-Rechnung"], "unsubscribed"),
]


def seed_directory():
    """On an empty database the official directory and outlines shipped with the package; their ImportResult.

    A directory that is there already stays as it is (None): it may be newer
    than the shipped one.
    """
    if db.session.execute(select(District.key).limit(1)).first() is not None:
        return None
    return import_shipped_or_exit()


def seed_subscribers():
    """Topics and a few subscribers of the demo district (only those not there yet)."""
    from subscribers import services

    district = db.session.get(District, DEMO_DISTRICT.key)
    known_topics = {t.name for t in services.district_topics(district.key)}
    for name in DEMO_TOPICS:
        if name not in known_topics:
            services.create_topic(district.key, name)
    present = {m.ags for m in district.municipalities}
    for email, name, ags, topics, status in DEMO_SUBSCRIBERS:
        if ags not in present or services.find_subscriber(district.key, email) is not None:
            continue
        if services.suppression_reason(district.key, email):
            continue  # someone erased it on purpose
        subscriber = services.add_subscriber(
            district, email, name, ags, topics=services.topics_by_name(district.key, topics), source="admin",
            double_opt_in=status == "pending", consent_version="2026-11-de",
        )
        if status == "unsubscribed":
            services.unsubscribe(subscriber)


def seed_events():
    """A workshop and an office-hours series of the demo district, published, not yet invited (once)."""
    from datetime import datetime, timedelta

    from events import services
    from events.models import Event

    if db.session.execute(select(Event.id).filter_by(district_key=DEMO_DISTRICT.key).limit(1)).first():
        return
    today = datetime.now(services.BERLIN).date()

    def next_weekday(weekday, after_days):
        day = today + timedelta(days=after_days)
        return day + timedelta(days=(weekday - day.weekday()) % 7)

    def at(day, hour):
        return services.from_local(datetime(day.year, day.month, day.day, hour))

    workshop_day, office_day = next_weekday(3, 14), next_weekday(1, 7)
    for data in (
        services.EventData(
            kind="workshop", title="Workshop E-Rechnung in der Gemeindeverwaltung",
            description="Empfang und Verarbeitung von XRechnungen, Anbindung an die Finanzsoftware, Erfahrungen "
                        "aus zwei Pilotgemeinden.",
            location="Landratsamt Böblingen, Parkstraße 16, 71034 Böblingen",
            starts_at=at(workshop_day, 9), ends_at=at(workshop_day, 12), capacity=20,
        ),
        services.EventData(
            kind="office_hours", title="Sprechstunde Digitalisierung",
            description="Ihre Fragen zu service-bw, Onlinediensten und Dokumentenmanagement.",
            online_url="https://konferenz.demo.invalid/sprechstunde", starts_at=at(office_day, 9),
            ends_at=at(office_day, 12), rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6", slot_minutes=30, capacity=1,
        ),
    ):
        services.publish(services.create_event(DEMO_DISTRICT.key, data))


def seed_coordinator():
    """The demo coordinator; returns (user, password), password None when the account existed."""
    user = find_user(DEMO_COORDINATOR)
    if user is not None:
        return user, None
    # .invalid is reserved and can never receive mail, which is what a demo wants.
    return create_user(
        DEMO_COORDINATOR, "coordinator", [DEMO_DISTRICT.key], name=_("Demo-Koordination Böblingen"), check_email=False
    )


@click.command("demo")
@directory_file_options
@needs_schema
def demo_command(districts_path, municipalities_path, boundary_paths):
    """Demodaten anlegen: Landkreis Böblingen mit Gemeinden und einem Koordinationskonto.

    Mit --districts/--municipalities/--boundaries werden diese Dateien
    eingelesen; sonst, wenn die Datenbank noch keine Kreise kennt, das
    mitgelieferte amtliche Verzeichnis mit Umrissen. Mehrfaches Ausführen ist
    unschädlich.
    """
    files_given = bool(districts_path or municipalities_path or boundary_paths)
    if files_given:
        imported = import_or_exit(districts_path, municipalities_path, boundary_paths)
    else:
        imported = seed_directory()
    district = db.session.execute(select(District).filter_by(key=DEMO_DISTRICT.key)).scalar_one_or_none()
    if district is None:
        db.session.rollback()
        if files_given:
            raise click.ClickException(_(
                "Der Kreis %(key)s fehlt: er steht weder in den Dateien noch in der Datenbank.", key=DEMO_DISTRICT.key
            ))
        raise click.ClickException(_(
            "Der Kreis %(key)s fehlt in der Datenbank; flask directory import liest das amtliche Verzeichnis ein.",
            key=DEMO_DISTRICT.key,
        ))
    seed_subscribers()
    seed_events()
    try:
        user, password = seed_coordinator()
    except AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    if imported is not None:
        echo_result(imported)
    echo_demo(district, user, password)


def echo_demo(district, user, password):
    click.echo(_("%(district)s mit %(n)d Gemeinden ist bereit.", district=district.display_name,
                 n=len(district.municipalities)))
    click.echo(_("Öffentliches Anmeldeformular: %(url)s", url=external_url("public.subscribe", key=district.key)))
    click.echo(_("Veranstaltungen: %(url)s", url=external_url("events_public.upcoming", key=district.key)))
    if password is None:
        click.echo(_(
            "Die Demo gibt es bereits; Anmeldung als %(email)s. Neues Passwort: flask users set-password %(email)s",
            email=user.email,
        ))
        return
    click.echo(_("Koordinationskonto angelegt. Das Passwort wird nur dieses eine Mal angezeigt:"))
    click.echo(_("E-Mail: %(email)s", email=user.email))
    click.echo(_("Passwort: %(password)s", password=password))
