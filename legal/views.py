"""Public legal pages at stable addresses, the admins' settings page, and the
footer links and banner every page gets (context processor)."""
from flask import Blueprint, abort, flash, has_request_context, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from accounts.auth import admin_required
from core.extensions import db
from core.forms import show_error
from legal import services
from legal.forms import LegalForm

bp = Blueprint("legal", __name__)


@bp.app_context_processor
def _legal_links():
    """Footer links on every page (error pages too); the banner for admins while a page is missing."""
    if not has_request_context():
        return {}  # mail templates render in workers: they get `legal_links` from mail_context
    context = {"legal_links": services.links()}
    if current_user and current_user.is_authenticated and current_user.is_admin:
        context["legal_missing"] = services.missing()
    return context


def _page(kind):
    page = services.pages()[kind]
    if page.url:
        return redirect(page.url)
    if not page.present:
        abort(404, _("%(title)s ist noch nicht hinterlegt.", title=page.title))
    return render_template("legal/page.html", page=page, body=services.render(services.text_of(page)))


@bp.get("/impressum")
def imprint():
    return _page("imprint")


@bp.get("/datenschutz")
def privacy():
    return _page("privacy")


@bp.get("/barrierefreiheit")
def accessibility():
    return _page("accessibility")


@bp.route("/admin/legal", methods=["GET", "POST"])
@admin_required
def settings():
    pages = services.pages()
    form = LegalForm(data={
        **{f"{kind}_url": page.url or "" for kind, page in pages.items()},
        **{f"{kind}_text": services.text_of(page) if not page.url else "" for kind, page in pages.items()},
    })
    if form.validate_on_submit():
        values = {kind: (form[f"{kind}_url"].data, form[f"{kind}_text"].data) for kind in services.KINDS}
        try:
            services.save(values)
        except services.LegalError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(_("Die rechtlichen Angaben sind gespeichert."), "success")
            return redirect(url_for("legal.settings"))
    return render_template("legal/settings.html", form=form, pages=pages,
                           default_contact=services.accessibility_contact())
