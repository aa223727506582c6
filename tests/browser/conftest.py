"""The browser suite: Debian's Chromium, driven by Playwright, against a live server.

One Chromium per session, a fresh browser context per test. The live server is
the test app (the suite's database and embedded Redis) served by werkzeug in a
thread on a free port, with BASE_URL on that port so that links in mails work;
mail goes to the suite's real SMTP server, and jobs run in the test's thread
through the `run_jobs` fixture, as everywhere else in the suite.

Every page a journey visits goes through `Browser.check_page`: axe-core's WCAG
2.1 A/AA rules, every table in a focusable scroll region named after the table
(its caption, not just "Tabelle"), and (at 375 px) no
horizontal overflow of the page. Playwright never downloads a browser here:
without /usr/bin/chromium the suite is skipped (`.ci/run` installs it).
"""
import json
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import free_port

CHROMIUM = os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# The network is closed in CI and locally; Chromium's own background traffic
# only produces refused connections and noise.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    # Tagged wcag21a but "experimental", so off unless named: a visible label
    # that the accessible name does not contain (the English "Log in" that
    # should read "Register").
    "rules": {"label-content-name-mismatch": {"enabled": True}},
    "resultTypes": ["violations"],
    # Frames here are previews of mails (sandboxed, no scripts): mail documents, which the mail
    # tests check; axe would wait for an answer from inside them.
    "iframes": False,
}
# The page's width against the window's, and (as a hint) the deepest elements that stick out or
# whose text does: an element past the right edge, or one whose content is wider than itself.
OVERFLOW_JS = """() => {
  const edge = window.innerWidth + 1;
  if (document.documentElement.scrollWidth < edge) {
    return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth, wide: []};
  }
  const wide = e => {
    const box = e.getBoundingClientRect();
    return (box.width > 0 && box.right > edge)
      || (getComputedStyle(e).overflowX === 'visible' && e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1);
  };
  const all = Array.from(document.querySelectorAll('body *')).filter(wide);
  const deepest = all.filter(e => !all.some(other => other !== e && e.contains(other)));
  return {scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
          wide: deepest.slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
            + (typeof e.className === 'string' && e.className ? '.' + e.className.trim().split(/\\s+/).join('.') : '')
            + ' ' + JSON.stringify((e.textContent || '').trim().slice(0, 40)))};
}"""
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "narrow": {"width": 375, "height": 812}}
LANGUAGES = ("de", "en")

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

# Every page checked in this session, for the summary at the end: (name, language, viewport, path, seconds).
VISITED = []
# Tokens, outbox stems and upload ids in paths, so that the summary lists a page once.
TOKEN = re.compile(r"(?<=/)(?:[^/]{40,}|\d{8}T\d+Z-[0-9a-f]+(?=/|$))|(?<=/import/)[^/]+(?=/)")


def pytest_collection_modifyitems(items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter):
    if not VISITED:
        return
    pages = sorted({(name, path) for name, _lang, _viewport, path, _seconds in VISITED})
    seconds = sum(visit[-1] for visit in VISITED)
    terminalreporter.write_sep(
        "-", f"browser suite: {len(VISITED)} page checks ({seconds:.0f} s), {len(pages)} distinct pages"
    )
    for name, path in pages:
        terminalreporter.write_line(f"{name:32} {path}")


# --- the browser ---------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian package `chromium`; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(params=LANGUAGES)
def language(request):
    return request.param


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request):
    return request.param


# --- the live server -------------------------------------------------------------


@pytest.fixture
def live_port():
    return free_port()


@pytest.fixture
def app(make_app, smtp_server, live_port):
    """The suite's app with mail to the test SMTP server and links to the live server's port."""
    app = make_app(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port, BASE_URL=f"http://127.0.0.1:{live_port}",
        WTF_CSRF_ENABLED=True,
    )
    with app.app_context():
        yield app


@pytest.fixture
def live_server(app, live_port):
    """The app served on 127.0.0.1:`live_port`, one request at a time (SQLite is shared with the test)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", live_port, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{live_port}"
    server.shutdown()
    thread.join(10)


# --- pages, checked --------------------------------------------------------------


class Browser:
    """A browser context for one test: a language, a viewport, and the checks on every page."""

    def __init__(self, chromium, base_url, language, viewport, smtp):
        self.chromium, self.base_url, self.language, self.viewport = chromium, base_url, language, viewport
        self.smtp = smtp
        self.context = chromium.new_context(
            viewport=VIEWPORTS[viewport], bypass_csp=True, locale="de-DE" if language == "de" else "en-GB",
            timezone_id="Europe/Berlin",
        )
        self.context.set_default_timeout(15000)
        self.page = self.context.new_page()
        self.problems = []
        self.others = []

    def fresh(self):
        """Another person's browser (own cookies), same language and width; closed with this one."""
        other = Browser(self.chromium, self.base_url, self.language, self.viewport, self.smtp)
        self.others.append(other)
        return other

    def close(self):
        for browser in [self, *self.others]:
            browser.context.close()
        left = [problem for browser in [self, *self.others] for problem in browser.problems]
        assert not left, "call assert_clean() at the end of the test:\n" + json.dumps(left, indent=1)

    @property
    def narrow(self):
        return self.viewport == "narrow"

    def url(self, path):
        return self.base_url + path

    def goto(self, path, name=None):
        """Open `path`; with a `name`, check the page it lands on."""
        response = self.page.goto(self.url(path))
        assert response is not None and response.status < 400, f"{path}: HTTP {response and response.status}"
        if name:
            self.check_page(name)
        return self.page

    def t(self, german, english):
        """The text the page shows in this test's language."""
        return german if self.language == "de" else english

    def switch_language(self):
        """Choose this test's language with the switch in the footer (German is the default)."""
        page = self.page
        if page.url == "about:blank":
            self.goto("/")
        page.locator("footer select[name=lang]").select_option(self.language)
        page.locator("footer form.language button[type=submit]").click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == self.language

    def check_page(self, name, lang=None, record=True):
        """axe (WCAG 2.1 A/AA), tables in scroll regions, no page overflow at 375 px; records the page.

        `lang`: the document's language when it is not the chosen one (a German newsletter's web version).
        `record`: list the page in the session's summary of visited pages.
        """
        page = self.page
        page.wait_for_load_state()
        started = time.monotonic()
        path = TOKEN.sub("<token>", urlsplit(page.url).path)
        where = f"{name} ({path}, {self.language}, {self.viewport})"
        expected, lang = lang, page.locator("html").get_attribute("lang")
        if lang != (expected or self.language):
            self.problems.append(f"{where}: <html lang={lang!r}>, expected {expected or self.language!r}")
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
        violations = page.evaluate(
            "options => axe.run(document, options).then(result => result.violations.map(v => ({"
            " id: v.id, impact: v.impact, help: v.help,"
            " targets: v.nodes.map(n => n.target.join(' ')), summaries: v.nodes.map(n => n.failureSummary)"
            "})))",
            AXE_OPTIONS,
        )
        for violation in violations:
            targets = "\n        ".join(
                f"{target}: {summary.splitlines()[-1].strip() if summary else ''}"
                for target, summary in zip(violation["targets"], violation["summaries"])
            )
            self.problems.append(
                f"{where}: axe {violation['id']} ({violation['impact']}): {violation['help']}\n        {targets}"
            )
        bare = page.evaluate(
            "() => Array.from(document.querySelectorAll('table:not([role=presentation]):not([role=none])')).filter(t => {"
            " const box = t.closest('.table-scroll');"
            " return !box || box.getAttribute('role') !== 'region' || box.getAttribute('tabindex') !== '0'"
            "   || !box.getAttribute('aria-label') || ['Tabelle', 'Table'].includes(box.getAttribute('aria-label').trim());"
            " }).map(t => t.className || t.id || 'table')"
        )
        if bare:
            self.problems.append(
                f"{where}: tables outside a focusable .table-scroll region labelled after the table: {bare}"
            )
        if self.narrow:
            widths = page.evaluate(OVERFLOW_JS)
            if widths["scroll"] > widths["inner"]:
                self.problems.append(
                    f"{where}: the page is {widths['scroll']} px wide at {widths['inner']} px: {widths['wide']}"
                )
        if record:
            VISITED.append((name, self.language, self.viewport, path, time.monotonic() - started))

    def assert_clean(self):
        """Fail with every problem found on every page of this test."""
        found, self.problems = self.problems, []
        if found:
            pytest.fail(f"{len(found)} accessibility or layout problem(s):\n  " + "\n  ".join(found), pytrace=False)

    # --- mail ---------------------------------------------------------------------

    def mail_to(self, address, count=1, timeout=10.0):
        """The last message to `address`, waiting until `count` have arrived."""
        end = time.monotonic() + timeout
        while True:
            found = [m for m in self.smtp.messages if address in str(m["To"])]
            if len(found) >= count or time.monotonic() > end:
                break
            time.sleep(0.05)
        assert len(found) >= count, f"no mail to {address}: {[str(m['To']) for m in self.smtp.messages]}"
        return found[-1]

    def link_in(self, message, pattern):
        """The first link in the plain text of `message` whose path matches `pattern`, as a path."""
        text = message.get_body(("plain",)).get_content()
        for url in re.findall(r"https?://\S+", text):
            url = url.rstrip(">).,")
            parts = urlsplit(url)
            if re.search(pattern, parts.path):
                assert f"{parts.scheme}://{parts.netloc}" == self.base_url, f"{url} does not point at the server"
                return parts.path + (f"?{parts.query}" if parts.query else "")
        raise AssertionError(f"no link matching {pattern!r} in:\n{text}")


@pytest.fixture
def ui(chromium, live_server, language, viewport, smtp_server):
    browser = Browser(chromium, live_server, language, viewport, smtp_server)
    yield browser
    browser.close()
