"""Language and time zone: German and Europe/Berlin unless the person chose English."""
from flask import current_app, has_request_context, request, session
from flask_babel import format_date, format_datetime, format_time, refresh

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


def init_app(app):
    # The locale is cached per app context; a language chosen in one request
    # must not stick to the next one that shares the context.
    app.teardown_request(lambda exc: refresh())
    # Fixed German formats (21.11.2026, 14:30) rather than Babel's "medium"
    # ones, which spell months out differently per locale version.
    app.jinja_env.filters["date"] = lambda value: format_date(value, "dd.MM.yyyy") if value else ""
    app.jinja_env.filters["time"] = lambda value: format_time(value, "HH:mm") if value else ""
    app.jinja_env.filters["datetime"] = lambda value: format_datetime(value, "dd.MM.yyyy HH:mm") if value else ""

    @app.context_processor
    def _language():
        from flask_babel import get_locale

        return {"current_language": str(get_locale()), "languages": app.config["LANGUAGES"], "request": request}
