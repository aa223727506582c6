"""Login, logout, the own password, and user administration for admins.

Generated passwords and API tokens are rendered into the response of the POST
that created them and nowhere else: they are not flashed (the session cookie
is only signed, not encrypted) and the page is sent with `no-store`.
"""
from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from accounts import admin
from accounts.auth import admin_required, login_required, principal, sign_in, sign_out
from accounts.forms import (
    ROLE_LABELS,
    EditUserForm,
    LoginForm,
    NewUserForm,
    PasswordChangeForm,
    TokenForm,
)
from accounts.models import ApiToken, User
from accounts.services import (
    MIN_PASSWORD_LENGTH,
    AccountError,
    authenticate,
    create_user,
    issue_token,
)
from core.database import load_or_404
from core.extensions import db, limiter
from core.forms import show_error
from core.urls import safe_redirect_target

bp = Blueprint("accounts", __name__)


# --- login and logout ----------------------------------------------------


def _login_rate_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def _submitted_email():
    # Keyed by the account, so one address cannot be tried from many clients.
    # Never empty: Flask-Limiter would skip the limit and log an error.
    return "login-email:" + (request.form.get("email") or "").strip().lower()


def _failed_attempt(response):
    # Only failed attempts count (the form comes back with 200): colleagues
    # behind one office address must not lock each other out by logging in.
    return response.status_code == 200


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"], deduct_when=_failed_attempt)
@limiter.limit(_login_rate_limit, methods=["POST"], key_func=_submitted_email, deduct_when=_failed_attempt)
def login():
    if request.method == "GET" and principal() is not None:
        return redirect(url_for("core.index"))
    target = safe_redirect_target(request.args.get("next"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            sign_in(user)
            db.session.commit()  # the session, last_login_at, and a rehashed password if any
            return redirect(target or url_for("core.index"))
        # One message for unknown addresses, wrong passwords and deactivated
        # accounts: the page must not tell which addresses have an account.
        form.form_errors.append(_("E-Mail-Adresse oder Passwort ist falsch."))
    return render_template("accounts/login.html", form=form, next=target)


@bp.post("/logout")
def logout():
    sign_out()
    db.session.commit()
    flash(_("Sie wurden abgemeldet."), "info")
    return redirect(url_for("accounts.login"))


# --- own account -----------------------------------------------------------


def _keep_signed_in(user):
    # set_password ended every session of the user, this browser's too; it
    # gets a fresh one (a new key: the old cookie stays worthless).
    sign_in(user)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    user = principal()
    form = PasswordChangeForm()
    if form.validate_on_submit():
        try:
            admin.change_own_password(user, form.current_password.data, form.new_password.data)
        except AccountError as error:
            show_error(form, error)
        else:
            _keep_signed_in(user)
            db.session.commit()
            flash(_("Ihr Passwort wurde geändert. Andere Sitzungen wurden beendet."), "success")
            return redirect(url_for("accounts.password"))
    return render_template("accounts/password.html", form=form, user=user, min_length=MIN_PASSWORD_LENGTH)


# --- user administration ---------------------------------------------------


def _secret_page(template, **context):
    response = current_app.make_response(render_template(template, role_labels=ROLE_LABELS, **context))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/admin/users")
@admin_required
def users():
    return render_template("accounts/users.html", users=admin.all_users(), role_labels=ROLE_LABELS)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@admin_required
def new_user():
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user, password = create_user(
                form.email.data, form.role.data, form.districts.data, name=form.name.data or ""
            )
        except AccountError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            return _secret_page("accounts/user_created.html", user=user, password=password)
    return render_template("accounts/user_new.html", form=form)


def _edit_page(user, form=None, token_form=None):
    if form is None:
        form = EditUserForm(obj=user, formdata=None)
        form.districts.data = [d.key for d in user.districts]
    return render_template(
        "accounts/user_edit.html",
        user=user,
        form=form,
        token_form=token_form or TokenForm(formdata=None),
        tokens=admin.user_tokens(user),
        role_labels=ROLE_LABELS,
        is_self=user.id == principal().id,
    )


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def edit_user(user_id):
    user = load_or_404(User, id=user_id)
    if request.method == "GET":
        return _edit_page(user)
    form = EditUserForm()
    if form.validate_on_submit():
        try:
            admin.update_account(
                principal(), user, form.role.data, form.districts.data, form.name.data, form.active.data
            )
        except AccountError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(_("Das Konto %(email)s wurde gespeichert.", email=user.email), "success")
            return redirect(url_for("accounts.edit_user", user_id=user.id))
    return _edit_page(user, form=form)


@bp.post("/admin/users/<int:user_id>/password")
@admin_required
def reset_password(user_id):
    user = load_or_404(User, id=user_id)
    password = admin.reset_password(user)
    if user.id == principal().id:
        _keep_signed_in(user)
    db.session.commit()
    return _secret_page("accounts/password_reset.html", user=user, password=password)


@bp.post("/admin/users/<int:user_id>/tokens")
@admin_required
def issue_api_token(user_id):
    user = load_or_404(User, id=user_id)
    form = TokenForm()
    if not form.validate_on_submit():
        return _edit_page(user, token_form=form)
    token = issue_token(user, label=form.label.data or "")
    db.session.commit()
    return _secret_page("accounts/token_issued.html", user=user, token=token, label=form.label.data or "")


@bp.post("/admin/users/<int:user_id>/tokens/<int:token_id>/delete")
@admin_required
def revoke_api_token(user_id, token_id):
    user = load_or_404(User, id=user_id)
    token = load_or_404(ApiToken, id=token_id, user_id=user.id)
    admin.revoke_token(token)
    db.session.commit()
    flash(_("Das API-Token wurde widerrufen."), "success")
    return redirect(url_for("accounts.edit_user", user_id=user.id))
