"""The period and filters of a reach view, read from and written back to the URL.

Everything a view shows depends only on its query string (`zeitraum`, `von`,
`bis`, `thema`, `kanal`), so a view can be bookmarked and shared; the API
takes the same filters as `from`, `to`, `topic`, `channel`.
"""
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from reach.definition import CHANNELS, berlin_today

PRESETS = {
    "jahr": _l("laufendes Jahr"),
    "12monate": _l("letzte 12 Monate"),
    "quartal": _l("letztes Quartal"),
    "programm": _l("seit Programmstart"),
    "frei": _l("frei wählbar"),
}
DEFAULT_PRESET = "jahr"
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
MAX_TOPIC_LENGTH = 100


class FilterError(ValueError):
    """A filter value that can not be used; `field` names the parameter."""

    def __init__(self, message, field):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Filters:
    first: date
    last: date
    preset: str = DEFAULT_PRESET
    topic: str | None = None
    channels: tuple = field(default_factory=tuple)  # channel codes; empty: all

    @property
    def channel_numbers(self):
        return frozenset(CHANNELS[code] for code in self.channels)

    def query_args(self):
        """The URL parameters that reproduce these filters."""
        args = {"zeitraum": self.preset}
        if self.preset == "frei":
            args.update(von=self.first.isoformat(), bis=self.last.isoformat())
        if self.topic:
            args["thema"] = self.topic
        if self.channels:
            args["kanal"] = list(self.channels)
        return args

    def api_args(self):
        args = {"from": self.first.isoformat(), "to": self.last.isoformat()}
        if self.topic:
            args["topic"] = self.topic
        if self.channels:
            args["channel"] = list(self.channels)
        return args


def this_year(today=None):
    """The default view: the current calendar year up to today."""
    today = today or berlin_today()
    return Filters(date(today.year, 1, 1), today)


def programme_start():
    return current_app.config["REACH_PROGRAMME_START"]


def preset_range(preset, today):
    """(first, last) of a preset period ending today (the last quarter: the last full calendar quarter)."""
    if preset == "jahr":
        return date(today.year, 1, 1), today
    if preset == "12monate":
        try:
            first = today.replace(year=today.year - 1) + timedelta(days=1)
        except ValueError:  # 29 February
            first = date(today.year - 1, 3, 1)
        return first, today
    if preset == "quartal":
        quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last = quarter_start - timedelta(days=1)
        return date(last.year, 3 * ((last.month - 1) // 3) + 1, 1), last
    if preset == "programm":
        return programme_start(), today
    raise FilterError(_("Unbekannter Zeitraum: %(value)s", value=preset), "zeitraum")


def parse_date(value, name):
    """An ISO date (2026-11-21) or a German one (21.11.2026); else FilterError naming the parameter."""
    text = (value or "").strip()
    try:
        if "." in text:
            day, month, year = text.split(".")
            parsed = date(int(year), int(month), int(day))
        else:
            parsed = date.fromisoformat(text)
    except (ValueError, TypeError):
        raise FilterError(_("%(name)s: kein gültiges Datum (%(value)s); erwartet z. B. 21.11.2026.",
                            name=name, value=text[:40] or "–"), name) from None
    if not EARLIEST <= parsed <= LATEST:
        raise FilterError(_("%(name)s: das Datum muss zwischen 2000 und 2100 liegen.", name=name), name)
    return parsed


def _channels(values, name):
    codes = []
    for value in values:
        for code in str(value).split(","):
            code = code.strip()
            if not code:
                continue
            if code not in CHANNELS:
                raise FilterError(_("Unbekannter Kanal: %(value)s (newsletter, event oder contact).",
                                    value=code[:40]), name)
            if code not in codes:
                codes.append(code)
    # All channels chosen is the same view as none chosen.
    return tuple(code for code in CHANNELS if code in codes) if len(codes) < len(CHANNELS) else ()


def _topic(value, name):
    topic = (value or "").strip()
    if len(topic) > MAX_TOPIC_LENGTH:
        raise FilterError(_("%(name)s: höchstens %(n)d Zeichen.", name=name, n=MAX_TOPIC_LENGTH), name)
    return topic or None


def from_page_args(args, today=None):
    """Filters from a page's query string (`zeitraum`, `von`, `bis`, `thema`, `kanal`)."""
    today = today or berlin_today()
    preset = args.get("zeitraum") or ("frei" if args.get("von") or args.get("bis") else DEFAULT_PRESET)
    if preset == "frei":
        first = parse_date(args.get("von") or programme_start().isoformat(), "von")
        last = parse_date(args.get("bis") or today.isoformat(), "bis")
    else:
        first, last = preset_range(preset, today)
    return _checked(first, last, preset, _topic(args.get("thema"), "thema"),
                    _channels(args.getlist("kanal"), "kanal"), "bis")


def from_api_args(args, today=None):
    """Filters from an API query string (`from`, `to`, `topic`, `channel`); default: the current year."""
    today = today or berlin_today()
    first = parse_date(args["from"], "from") if args.get("from") else date(today.year, 1, 1)
    last = parse_date(args["to"], "to") if args.get("to") else today
    preset = "frei" if args.get("from") or args.get("to") else DEFAULT_PRESET
    return _checked(first, last, preset, _topic(args.get("topic"), "topic"),
                    _channels(args.getlist("channel"), "channel"), "to")


def _checked(first, last, preset, topic, channels, last_name):
    if last < first:
        raise FilterError(_("Das Ende des Zeitraums liegt vor seinem Anfang."), last_name)
    return Filters(first, last, preset, topic, channels)
