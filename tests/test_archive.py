"""The public newsletter archive and the web version each mail links to."""
import re

from core.extensions import db
from directory.models import District
from newsletter import jobs, services


def test_archive_lists_sent_newsletters_without_personal_data(two_districts, make_subscriber, smtp_app, smtp_server,
                                                              run_jobs):
    make_subscriber("anna@boeblingen.de", name="Anna Alt")
    district = db.session.get(District, "08115")
    sent = services.create_newsletter(district, "Neues zur E-Rechnung", "Hallo {{ name }}, die **E-Rechnung** kommt.")
    draft = services.create_newsletter(district, "Entwurf: geheim", "Noch nicht fertig")
    db.session.commit()
    services.send_now(sent)
    db.session.commit()
    jobs.enqueue_senders(sent.id)
    run_jobs()
    client = smtp_app.test_client()

    index = client.get("/d/08115/newsletters").get_data(as_text=True)
    assert "Neues zur E-Rechnung" in index and "Entwurf" not in index
    assert client.get(f"/d/08115/newsletters/{draft.id}").status_code == 404
    assert client.get(f"/d/08116/newsletters/{sent.id}").status_code == 404

    # The mail links to its web version, which shows the content but no one's data.
    mail = smtp_server.wait_for(1)[0]
    web = re.search(r"https?://[^\s\"]+/d/08115/newsletters/\d+", mail.get_body(("plain",)).get_content()).group(0)
    page = client.get(re.sub(r"^https?://[^/]+", "", web))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<strong>E-Rechnung</strong>" in html
    assert "Anna" not in html and "anna@" not in html and "/t/o/" not in html and "/unsubscribe/" not in html
    assert "script-src" not in page.headers["Content-Security-Policy"] and "sandbox" in page.headers["Content-Security-Policy"]
