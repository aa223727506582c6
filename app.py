"""The application factory.

`flask` finds this module from the repository root without `--app`, and its
`create_app` factory. The extensions live in `core.extensions`; blueprints
are imported inside the factory, so no package ever imports this module.
"""
import os

from flask import Flask

from core.extensions import ROOT, babel, csrf, db, limiter, login_manager, mail, migrate


class App(Flask):
    def select_jinja_autoescape(self, filename):
        # MJML mail templates are markup too (templates/email/*.mjml).
        return filename is None or filename.endswith((".html", ".htm", ".xml", ".xhtml", ".svg", ".mjml"))


def create_app(config=None):
    """Build the app. `config` (a mapping) overrides the environment."""
    from core.config import load_config

    config = dict(config or {})
    app = App(
        __name__,
        instance_path=config.get("INSTANCE_PATH") or os.environ.get("INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    load_config(app, config)
    from core import paging

    paging.init_app(app)  # before any route: the bounded `int` converter

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True)
    mail.init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)

    from core import i18n

    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=i18n.select_timezone)
    i18n.init_app(app)

    import core.database  # noqa: F401  (registers the district scope and SQLite pragmas)
    import core.models  # noqa: F401
    import events.models  # noqa: F401
    import events.privacy  # noqa: F401  (registrations in the data-protection export and erasure)
    import newsletter.models  # noqa: F401  (tables the migrations and erasure know about)
    import reach.models  # noqa: F401
    from accounts import auth

    auth.init_app(app)

    from accounts.cli import users_cli
    from accounts.views import bp as accounts_bp
    from core.cli import register_cli
    from core.outbox_views import bp as outbox_bp
    from core.views import bp as core_bp
    from directory.cli import directory_cli
    from legal.views import bp as legal_bp
    from newsletter.archive import bp as archive_bp
    from newsletter.tracking import bp as tracking_bp
    from subscribers.cli import subscribers_cli
    from subscribers.manage import bp as manage_bp
    from subscribers.public import bp as public_bp
    from subscribers.transfer import bp as transfer_bp
    from subscribers.views import bp as subscribers_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(outbox_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(subscribers_bp)
    app.register_blueprint(manage_bp)
    app.register_blueprint(transfer_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(tracking_bp)
    app.register_blueprint(archive_bp)
    app.register_blueprint(legal_bp)

    from newsletter.views import bp as newsletters_bp  # issue 4: coordinator pages

    app.register_blueprint(newsletters_bp)

    from events.public import (
        bp as events_public_bp,  # issue 5: RSVP, registration, feed
    )
    from events.views import bp as events_bp

    app.register_blueprint(events_bp)
    app.register_blueprint(events_public_bp)

    from reach.contact_views import bp as contacts_bp
    from reach.views import bp as reach_bp

    app.register_blueprint(contacts_bp)
    app.register_blueprint(reach_bp)

    from core.api import register_api

    register_api(app)

    from core import errors

    errors.init_app(app)

    app.cli.add_command(users_cli)
    app.cli.add_command(directory_cli)
    app.cli.add_command(subscribers_cli)

    from newsletter.cli import (
        newsletter_cli,  # issue 4: flask newsletter send|pause|resume|cancel
    )

    app.cli.add_command(newsletter_cli)
    from reach.cli import contacts_cli

    app.cli.add_command(contacts_cli)
    from reach.commands import reach_cli

    app.cli.add_command(reach_cli)
    register_cli(app)
    return app
