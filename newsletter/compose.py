"""Newsletter content: checking it, compiling MJML once, and the per-recipient render.

A coordinator writes Markdown (placed into the district's MJML layout) or
MJML sections (placed between the layout's header and footer, which always
carry the unsubscribe and preferences links). Jinja placeholders personalise
each mail; the ones allowed are PLACEHOLDERS. Saving checks the template
syntax and the MJML and names the line of an error; the MJML is compiled
once and stored with the placeholders still in it, so sending only renders
the placeholders per recipient.
"""
import re
import xml.parsers.expat
from functools import lru_cache

import html2text
from flask import render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from jinja2 import TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt
from mjml import mjml2html

from directory.identity import mail_context

PLACEHOLDERS = {
    "name": _l("Name der Empfängerin oder des Empfängers"),
    "email": _l("E-Mail-Adresse"),
    "municipality": _l("Gemeinde"),
    "preferences_url": _l("Link zu den Einstellungen"),
    "unsubscribe_url": _l("Abmeldelink"),
    "web_url": _l("Link zur Webversion"),
}
# Filled by the sending pipeline, not by the coordinator.
SYSTEM_PLACEHOLDERS = {"open_url", "click_base"}
JINJA_MARKUP = re.compile(r"({{.*?}}|{%.*?%}|{#.*?#})", re.DOTALL)

# Coordinators' templates run sandboxed: no attribute access to Python internals.
sandbox = SandboxedEnvironment(autoescape=True)
plain_sandbox = SandboxedEnvironment(autoescape=False)  # subject and text part
markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


class ContentError(ValueError):
    """The content can not be compiled; the message names the line where it can."""

    def __init__(self, message, field="body"):
        super().__init__(message)
        self.field = field


def check_template(source, field="body"):
    """Jinja syntax and only the known placeholders; else ContentError."""
    try:
        tree = sandbox.parse(source)
    except TemplateSyntaxError as error:
        raise ContentError(_("Vorlagenfehler in Zeile %(line)d: %(message)s", line=error.lineno, message=error.message),
                           field) from error
    unknown = sorted(meta.find_undeclared_variables(tree) - set(PLACEHOLDERS))
    if unknown:
        raise ContentError(_(
            "Unbekannter Platzhalter: %(names)s. Erlaubt sind: %(allowed)s",
            names=", ".join(unknown), allowed=", ".join(sorted(PLACEHOLDERS)),
        ), field)


def check_mjml(source):
    """Well-formed MJML sections; the line counts from the first line of the content."""
    parser = xml.parsers.expat.ParserCreate()
    open_tags = []
    parser.StartElementHandler = lambda name, attrs: open_tags.append((name, parser.CurrentLineNumber))
    parser.EndElementHandler = lambda name: open_tags.pop()
    try:
        parser.Parse(f"<mj-body>{source}\n</mj-body>", True)
    except xml.parsers.expat.ExpatError as error:
        if error.lineno > source.count("\n") + 1 and len(open_tags) > 1:
            # Noticed only at the end: name the tag left open and its line.
            name, line = open_tags[-1]
            raise ContentError(_("MJML-Fehler in Zeile %(line)d: <%(tag)s> wird nicht geschlossen",
                                 line=line, tag=name)) from error
        message = xml.parsers.expat.ErrorString(error.code)
        raise ContentError(_("MJML-Fehler in Zeile %(line)d: %(message)s", line=error.lineno, message=message)) from error


def _protect(source):
    """Replace Jinja markup by plain tokens that Markdown and html2text leave alone."""
    saved = []

    def keep(match):
        saved.append(match.group(0))
        return f"JINJAPLACEHOLDER{len(saved) - 1}X"

    return JINJA_MARKUP.sub(keep, source), saved


def _restore(text, saved):
    return re.sub(r"JINJAPLACEHOLDER(\d+)X", lambda m: saved[int(m.group(1))], text)


def body_html(body_format, body):
    if body_format == "markdown":
        protected, saved = _protect(body)
        return _restore(markdown.render(protected), saved)
    return body


def text_of(html):
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    protected, saved = _protect(html)
    return _restore(converter.handle(protected), saved).strip()


def compile_content(newsletter):
    """(html, text) with the placeholders left in, or ContentError. Does not write anything."""
    check_template(newsletter.subject, "subject")
    check_template(newsletter.preheader or "", "preheader")
    check_template(newsletter.body)
    if newsletter.body_format == "mjml":
        check_mjml(newsletter.body)
    district = newsletter.district
    context = {
        **mail_context(district),
        "newsletter": newsletter,
        "preheader": newsletter.preheader,
        "body_format": newsletter.body_format,
        "body": body_html(newsletter.body_format, newsletter.body),
        "links": {"preferences": "{{ preferences_url }}", "unsubscribe": "{{ unsubscribe_url }}"},
    }
    try:
        html = mjml2html(render_template("email/newsletter.mjml", **context))
    except ValueError as error:
        raise ContentError(_("MJML-Fehler: %(message)s", message=str(error))) from error
    text_body = newsletter.body if newsletter.body_format == "markdown" else text_of(context["body"])
    text = render_template("email/newsletter.txt", **{**context, "body": text_body})
    return html, text


def compile_newsletter(newsletter):
    """Compile and store; with tracking, links are rewritten to click redirects and a pixel added."""
    from newsletter.tracking import rewrite_links

    html, text = compile_content(newsletter)
    # Links are kept, not replaced: a link row of an earlier version costs
    # nothing, and rewrite_links reuses the rows of unchanged URLs.
    if newsletter.tracking:
        html = rewrite_links(newsletter, html)
    newsletter.compiled_html, newsletter.compiled_text = html, text


@lru_cache(maxsize=32)
def _compiled(source, html):
    return (sandbox if html else plain_sandbox).from_string(source)


def _render(template, context):
    """`template.render(context)` without the environment's globals.

    `check_template` lets a template name only the placeholders, never a
    global (`range`, `lipsum` …), so the context is passed as it is
    (`shared=True`): merging the globals into every recipient's context
    made rendering two and a half times as expensive.
    """
    return template.environment.concat(template.root_render_func(template.new_context(context, shared=True)))


def personalised(newsletter_html, newsletter_text, subject, context):
    """The per-recipient (subject, html, text): the only work done per mail."""
    return (
        _render(_compiled(subject, False), context),
        _render(_compiled(newsletter_html, True), context),
        _render(_compiled(newsletter_text, False), context),
    )


def preview(newsletter):
    """The compiled newsletter with sample values, for the preview frame."""
    from core.urls import external_url

    html, text = compile_content(newsletter)
    sample = {
        "name": "Erika Mustermann", "email": "erika.mustermann@gemeinde.example", "municipality": "Musterstadt",
        "preferences_url": "#", "unsubscribe_url": "#",
        "web_url": external_url("archive.newsletter", key=newsletter.district_key, id=newsletter.id)
        if newsletter.id and newsletter.published_in_archive else "",
        "open_url": "", "click_base": "#",
    }
    return personalised(html, text, newsletter.subject, sample)
