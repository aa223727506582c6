"""Language and time zone: German and Europe/Berlin unless the person chose English."""
from flask import current_app, has_request_context, request, session
from flask_babel import format_date, format_datetime, format_time, refresh
from flask_babel import gettext as _

SESSION_KEY = "lang"


def select_locale():
    languages = current_app.config["LANGUAGES"]
    # CLI commands and jobs have no session: they speak the default language.
    chosen = session.get(SESSION_KEY) if has_request_context() else None
    if chosen in languages:
        return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone():
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


# Fixed patterns per language rather than Babel's "medium" ones, which spell
# dates differently per locale version: German 21.11.2026 and 14:30; English
# 21 Nov 2026 and 14:30 (day before month and 24 hours, as in Germany, but no
# German words). Times are Europe/Berlin in both (select_timezone).
PATTERNS = {
    "de": {"date": "dd.MM.yyyy", "time": "HH:mm", "datetime": "dd.MM.yyyy HH:mm", "day": "EEEE, dd.MM.yyyy"},
    "en": {"date": "d MMM yyyy", "time": "HH:mm", "datetime": "d MMM yyyy, HH:mm", "day": "EEEE, d MMM yyyy"},
}


def pattern(kind):
    """The active language's pattern of `kind` (date, time, datetime, day)."""
    from flask_babel import get_locale

    return PATTERNS.get(str(get_locale()), PATTERNS["de"])[kind]


def format_day(value):
    """A date with its weekday for pages, in the active language: 'Dienstag, 01.12.2026'."""
    return format_datetime(value, pattern("day"))


def format_when(start, end):
    """A date's time span for pages, in the active language: 'Dienstag, 01.12.2026, 09:00–12:00 Uhr'."""
    day, clock = pattern("day"), pattern("time")
    same_day = format_date(start, "yyyyMMdd") == format_date(end, "yyyyMMdd")
    if same_day:
        return _("%(day)s, %(start)s–%(end)s Uhr", day=format_datetime(start, day),
                 start=format_time(start, clock), end=format_time(end, clock))
    return _("%(day)s, %(start)s Uhr – %(end_day)s, %(end)s Uhr", day=format_datetime(start, day),
             start=format_time(start, clock), end_day=format_datetime(end, day), end=format_time(end, clock))


def init_app(app):
    # The locale is cached per app context; a language chosen in one request
    # must not stick to the next one that shares the context.
    app.teardown_request(lambda exc: refresh())
    app.jinja_env.filters["date"] = lambda value: format_date(value, pattern("date")) if value else ""
    app.jinja_env.filters["time"] = lambda value: format_time(value, pattern("time")) if value else ""
    app.jinja_env.filters["datetime"] = lambda value: format_datetime(value, pattern("datetime")) if value else ""

    @app.context_processor
    def _language():
        from flask_babel import get_locale

        return {"current_language": str(get_locale()), "languages": app.config["LANGUAGES"], "request": request}
