"""German labels of events' and registrations' states, for pages and exports alike (no iCalendar words)."""
from flask_babel import lazy_gettext, lazy_pgettext

KIND_LABELS = {"workshop": lazy_gettext("Workshop"), "office_hours": lazy_gettext("Sprechstunde")}
STATUS_LABELS = {
    "draft": lazy_gettext("Entwurf"),
    "published": lazy_gettext("veröffentlicht"),
    "cancelled": lazy_gettext("abgesagt"),
}
REGISTRATION_LABELS = {
    "invited": lazy_gettext("eingeladen"),
    "confirmed": lazy_gettext("angemeldet"),
    "waiting": lazy_gettext("Warteliste"),
    "declined": lazy_pgettext("Antwort", "abgesagt"),
    "removed": lazy_gettext("entfernt"),
}
PARTSTAT_LABELS = {
    "NEEDS-ACTION": lazy_gettext("noch keine Antwort"),
    "ACCEPTED": lazy_gettext("zugesagt"),
    "TENTATIVE": lazy_gettext("vorläufig zugesagt"),
    "DECLINED": lazy_pgettext("Antwort", "abgesagt"),
}
ATTENDANCE_LABELS = {"attended": lazy_gettext("teilgenommen"), "no_show": lazy_gettext("nicht erschienen")}
MAIL_LABELS = {
    "queued": lazy_gettext("wartend"),
    "sending": lazy_gettext("in Arbeit"),
    "sent": lazy_gettext("gesendet"),
    "deferred": lazy_gettext("zurückgestellt"),
    "failed": lazy_gettext("fehlgeschlagen"),
    "suppressed": lazy_gettext("übersprungen"),
}
