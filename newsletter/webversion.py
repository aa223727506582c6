"""The web version of a newsletter: its content written for nobody in particular.

A mail is personal: "Guten Tag {{ name }}," and "Neues für
{{ municipality }}" are filled per recipient, its footer carries the
recipient's own links, and with tracking its links are redirects and an
image counts the opening. The public archive shows none of that. Filling the
placeholders with empty strings leaves "Guten Tag ," and "für " behind, so
they are filled with markers first and the markers are then replaced by
words that fit the sentence around them:

- the name goes, with the space before it ("Guten Tag {{ name }}," →
  "Guten Tag,"); a salutation that needs a name ("Liebe/r", "Sehr geehrte/r")
  becomes "Guten Tag"; after a preposition it becomes "Sie"/"Ihnen"
  ("für {{ name }}" → "für Sie");
- the municipality and the address become "Ihre Gemeinde" and "Ihre
  E-Mail-Adresse", after a preposition that takes the dative "Ihrer …"
  ("aus {{ municipality }}" → "aus Ihrer Gemeinde");
- a link to a personal address (preferences, unsubscribe, the web version
  itself) is unwrapped: its text stays, the link goes, so nothing leads to "#".

Only the coordinator's content is used, not the compiled mail: the page has
its own header and footer (the site's, with the subscribe link and the legal
links), so the mail's "Im Browser ansehen" line, its personal footer and its
tracking never enter it. The HTML is sanitised (nh3, the Ammonia sanitiser)
and its inline styles dropped, so the page keeps the site's strict
Content-Security-Policy (no 'unsafe-inline'), its own contrast and its
responsive layout; headings move one level down below the page's <h1>.
"""
import re
from functools import lru_cache

import nh3
from mjml import mjml2html

from newsletter import compose

NAME, MUNICIPALITY, EMAIL, PERSONAL_URL = "XNAMEX", "XMUNICIPALITYX", "XEMAILX", "about:personal-link"
MARKERS = {
    "name": NAME, "municipality": MUNICIPALITY, "email": EMAIL,
    "preferences_url": PERSONAL_URL, "unsubscribe_url": PERSONAL_URL, "web_url": PERSONAL_URL,
    "open_url": "", "click_base": "",
}

# Markup or spacing that may stand between a word and the placeholder: "für <strong>{{ name }}</strong>".
_GAP = r"(?:\s|&nbsp;|\u00a0|<[^>]*>)+"
_TAGS = r"(?:<[^>]*>)*"
_FORMAL = r"liebe/r|liebe\(r\)|lieber|liebe|sehr geehrte/r|sehr geehrte\(r\)|sehr geehrter|sehr geehrte"
_GREETING = r"hallo|guten (?:tag|morgen|abend)|moin|servus|grüß gott|grüezi"
_TITLE = r"(?:(?:frau/herr|frau|herr)(?:\s|&nbsp;|\u00a0)+)?"
# Prepositions that take the accusative, and those taking the dative, as they are used before a
# person or a place ("an Sie", "über Ihre Gemeinde"; "in Ihrer Gemeinde", "aus Ihrer Gemeinde").
_ACCUSATIVE = r"für|gegen|ohne|um|durch|an|über|auf"
_DATIVE = r"aus|bei|mit|nach|von|zu|in|vor|seit|neben|unter|zwischen"


def _tags_only(gap):
    return "".join(re.findall(r"<[^>]*>", gap))


def _capitalised(word, like):
    return word[0].upper() + word[1:] if like[:1].isupper() else word


def _neutral_name(text):
    def formal(match):
        return _capitalised("guten Tag", match.group(1)) + _tags_only(match.group(2))

    def greeting(match):
        return match.group(1) + _tags_only(match.group(2))

    text = re.sub(rf"\b({_FORMAL})({_GAP}){_TITLE}{_TAGS}{NAME}", formal, text, flags=re.IGNORECASE)
    text = re.sub(rf"\b({_GREETING})({_GAP}){_TITLE}{_TAGS}{NAME}", greeting, text, flags=re.IGNORECASE)
    text = re.sub(rf"\b({_ACCUSATIVE})({_GAP}){NAME}", r"\1\2Sie", text, flags=re.IGNORECASE)
    text = re.sub(rf"\b({_DATIVE})({_GAP}){NAME}", r"\1\2Ihnen", text, flags=re.IGNORECASE)
    # Opening a sentence ("{{ name }}, schön, dass …"): the name and its comma go.
    text = re.sub(rf"(^|>|[.!?]\s)(\s*)({_TAGS}){NAME}{_TAGS}\s*,\s*", r"\1\2\3", text)
    # Anywhere else the name goes with the space before it ("Danke, {{ name }}!" → "Danke!").
    text = re.sub(rf"(?:,\s*|[ \t\u00a0]+|&nbsp;)?{NAME}", "", text)
    return text


def _neutral_noun(text, marker, noun):
    text = re.sub(rf"\b({_DATIVE})({_GAP}){marker}", rf"\1\2Ihrer {noun}", text, flags=re.IGNORECASE)
    text = re.sub(rf"(^|[.!?:]\s+|>\s*){marker}", rf"\1Ihre {noun}", text)
    return text.replace(marker, f"Ihre {noun}")


def neutral(text):
    """Text or HTML rendered with MARKERS, with the markers replaced by neutral words."""
    text = _neutral_name(text)
    text = _neutral_noun(text, MUNICIPALITY, "Gemeinde")
    return _neutral_noun(text, EMAIL, "E-Mail-Adresse")


def _unwrap_personal_links(html):
    return re.sub(rf'<a\b[^>]*\bhref="{re.escape(PERSONAL_URL)}"[^>]*>(.*?)</a>', r"\1", html, flags=re.DOTALL)


def _render(source, html):
    return compose._render(compose._compiled(source, html), MARKERS)


def subject(newsletter):
    return " ".join(neutral(_render(newsletter.subject, False)).split())


def _mjml_content(body):
    """The body of the compiled MJML sections, without the document around it."""
    document = mjml2html(f"<mjml><mj-body>{body}</mj-body></mjml>")
    match = re.search(r"<body[^>]*>(.*)</body>", document, flags=re.DOTALL | re.IGNORECASE)
    return match.group(1) if match else ""


def _headings_down(html):
    return re.sub(r"<(/?)h([1-5])\b", lambda m: f"<{m.group(1)}h{int(m.group(2)) + 1}", html)


ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "div", "dl", "dt", "em", "figcaption",
    "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "small", "span",
    "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "width", "height"},
    # MJML lays sections out in tables marked role="presentation": keep that, or they read as data tables.
    "table": {"role"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
}


def content_html(newsletter):
    """The newsletter's content as safe HTML for the archive page (no styles, scripts or personal links)."""
    return _content_html(newsletter.body_format, newsletter.body)


# A public page and a feed of 20 entries render these on every request; the result depends only on
# the content, so each version of a newsletter is compiled and sanitised once per process.
@lru_cache(maxsize=64)
def _content_html(body_format, body):
    body = compose.body_html(body_format, body)
    if body_format == "mjml":
        body = _mjml_content(body)
    html = _unwrap_personal_links(neutral(_render(body, True)))
    # "Hallo <strong>{{ name }}</strong>," leaves an empty <strong> behind.
    html = re.sub(r"<(strong|em|b|i|u|span)>\s*</\1>", "", html)
    html = nh3.clean(
        _headings_down(html), tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"}, link_rel="noopener noreferrer",
    )
    return html


def content_text(newsletter):
    """Plain text of the content (for the search snippet and the feed summary)."""
    return compose.text_of(content_html(newsletter))
