"""Database triggers that mark a district's day dirty whenever a raw row behind reach changes.

Why triggers: touches change along many code paths (the mail pipeline's
AUTOCOMMIT records, the tracking pixel, bounces, RSVPs by link and by
calendar reply, check-in, cancellations, erasure, contacts), several of them
plain SQL. A trigger catches every one of them, in the same transaction as the
change, so no path can forget to tell the rollup. The marks are cheap (an
insert that is usually a no-op) and `reach.rollup.refresh` turns them into
touches.

Each trigger is described once, as SELECTs yielding (district_key, UTC day),
and rendered for SQLite and PostgreSQL. `{day(x)}` is the UTC date of the
timestamp `x`; `{date(x)}` a date column.
"""
import re

# (name, table, event, condition or None, [SELECT … yielding district_key, day])
TRIGGERS = [
    # A delivery counts while it is `sent`; a bounce takes it back. Erasure changes who it counts for.
    ("deliveries_status", "deliveries", "UPDATE OF status", "{old_or_new_status_in_sent_bounced}", [
        "SELECT NEW.district_key, {day(NEW.sent_at)} WHERE NEW.sent_at IS NOT NULL",
        "SELECT OLD.district_key, {day(OLD.sent_at)} WHERE OLD.sent_at IS NOT NULL",
    ]),
    ("deliveries_insert", "deliveries", "INSERT", "NEW.status = 'sent'", [
        "SELECT NEW.district_key, {day(NEW.sent_at)} WHERE NEW.sent_at IS NOT NULL",
    ]),
    ("deliveries_person", "deliveries", "UPDATE OF subscriber_id", None, [
        "SELECT NEW.district_key, {day(NEW.sent_at)} WHERE NEW.sent_at IS NOT NULL",
        "SELECT t.district_key, {day(t.created_at)} FROM tracking_events t WHERE t.delivery_id = NEW.id",
    ]),
    # Machine opens and clicks never count, so they mark nothing.
    ("tracking_insert", "tracking_events", "INSERT", "{new_is_human}", [
        "SELECT NEW.district_key, {day(NEW.created_at)}",
    ]),
    ("event_mails_status", "event_mails", "UPDATE OF status, subscriber_id", "NEW.kind = 'invitation'", [
        "SELECT NEW.district_key, {day(NEW.sent_at)} WHERE NEW.sent_at IS NOT NULL",
        "SELECT OLD.district_key, {day(OLD.sent_at)} WHERE OLD.sent_at IS NOT NULL",
    ]),
    ("event_mails_insert", "event_mails", "INSERT", "NEW.kind = 'invitation' AND NEW.status = 'sent'", [
        "SELECT NEW.district_key, {day(NEW.sent_at)} WHERE NEW.sent_at IS NOT NULL",
    ]),
    ("event_mails_delete", "event_mails", "DELETE", "OLD.kind = 'invitation'", [
        "SELECT OLD.district_key, {day(OLD.sent_at)} WHERE OLD.sent_at IS NOT NULL",
    ]),
    # Registrations count on their slot's date (an insert may come with its status already set).
    ("registrations_insert", "registrations", "INSERT", None, [
        "SELECT s.district_key, {day(s.starts_at)} FROM event_slots s WHERE s.id = NEW.slot_id",
    ]),
    ("registrations_update", "registrations",
     "UPDATE OF status, attendance, slot_id, subscriber_id, municipality_ags", None, [
         "SELECT s.district_key, {day(s.starts_at)} FROM event_slots s WHERE s.id = NEW.slot_id",
         "SELECT s.district_key, {day(s.starts_at)} FROM event_slots s WHERE s.id = OLD.slot_id",
     ]),
    ("registrations_delete", "registrations", "DELETE", None, [
        "SELECT s.district_key, {day(s.starts_at)} FROM event_slots s WHERE s.id = OLD.slot_id",
    ]),
    ("slots_update", "event_slots", "UPDATE OF starts_at, cancelled", None, [
        "SELECT NEW.district_key, {day(NEW.starts_at)}",
        "SELECT OLD.district_key, {day(OLD.starts_at)}",
    ]),
    ("slots_delete", "event_slots", "DELETE", None, [
        "SELECT OLD.district_key, {day(OLD.starts_at)}",
    ]),
    ("events_status", "events", "UPDATE OF status", None, [
        "SELECT s.district_key, {day(s.starts_at)} FROM event_slots s WHERE s.event_id = NEW.id",
    ]),
    ("contacts_update", "contacts", "UPDATE OF date, district_key", None, [
        "SELECT NEW.district_key, {date(NEW.date)}",
        "SELECT OLD.district_key, {date(OLD.date)}",
    ]),
    ("contacts_delete", "contacts", "DELETE", None, [
        "SELECT OLD.district_key, {date(OLD.date)}",
    ]),
    ("contact_municipalities_insert", "contact_municipalities", "INSERT", None, [
        "SELECT c.district_key, {date(c.date)} FROM contacts c WHERE c.id = NEW.contact_id",
    ]),
    ("contact_municipalities_delete", "contact_municipalities", "DELETE", None, [
        "SELECT c.district_key, {date(c.date)} FROM contacts c WHERE c.id = OLD.contact_id",
    ]),
]

# Conditions that read the same on both dialects (NOT on a boolean works on SQLite's 0/1 too).
_CONDITIONS = {
    "old_or_new_status_in_sent_bounced": "OLD.status IN ('sent', 'bounced') OR NEW.status IN ('sent', 'bounced')",
    "new_is_human": "NOT NEW.machine",
}


def _render(template, dialect):
    """Fill {day(x)}, {date(x)} and the named conditions for one dialect."""

    def day(match):
        column = match.group(1)
        if dialect == "sqlite":
            return f"date({column})"
        return f"(({column}) AT TIME ZONE 'UTC')::date"

    def plain_date(match):
        column = match.group(1)
        return f"date({column})" if dialect == "sqlite" else f"({column})::date"

    text = re.sub(r"\{day\(([^)]*)\)\}", day, template)
    text = re.sub(r"\{date\(([^)]*)\)\}", plain_date, text)
    for word, value in _CONDITIONS.items():
        text = text.replace("{" + word + "}", value)
    return text


def _marks(selects, dialect):
    if dialect == "sqlite":
        return [f"INSERT OR IGNORE INTO reach_dirty (district_key, day) {_render(s, dialect)}" for s in selects]
    return [f"INSERT INTO reach_dirty (district_key, day) {_render(s, dialect)} ON CONFLICT DO NOTHING"
            for s in selects]


def create_statements(dialect):
    """The DDL that installs every trigger on this dialect."""
    statements = []
    for name, table, event, condition, selects in TRIGGERS:
        when = f" WHEN ({_render(condition, dialect)})" if condition else ""
        body = ";\n".join(_marks(selects, dialect))
        if dialect == "sqlite":
            statements.append(
                f"CREATE TRIGGER reach_{name} AFTER {event} ON {table} FOR EACH ROW{when}\n"
                f"BEGIN\n{body};\nEND"
            )
        else:
            statements.append(
                f"CREATE OR REPLACE FUNCTION reach_{name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n{body};\nRETURN NULL;\nEND $$"
            )
            statements.append(
                f"CREATE TRIGGER reach_{name} AFTER {event} ON {table} FOR EACH ROW{when} "
                f"EXECUTE FUNCTION reach_{name}()"
            )
    return statements


def drop_statements(dialect):
    statements = []
    for name, table, _event, _condition, _selects in TRIGGERS:
        statements.append(f"DROP TRIGGER IF EXISTS reach_{name}" + ("" if dialect == "sqlite" else f" ON {table}"))
        if dialect != "sqlite":
            statements.append(f"DROP FUNCTION IF EXISTS reach_{name}()")
    return statements
