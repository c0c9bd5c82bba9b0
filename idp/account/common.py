"""What every page of "Mon compte" shares: rendering, notices sent to the user, dates."""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import lazy_gettext as _l

from ..web.common import absolute_url, format_when, ui_locale  # noqa: F401 (used by the sections)
from ..web.common import send_templated_email as send_email
from ..web.common import send_templated_sms as send_sms  # noqa: F401 (used by the sections)
from ..persistence.models import User
from ..services import services

# The sections of "Mon compte", in the order of the navigation: (endpoint, label).
SECTIONS = (
    ("account.requests", _l("Mes demandes")),
    ("account.notifications", _l("Notifications")),
    ("account.wallet", _l("Porte-documents")),
    ("account.subscriptions", _l("Abonnements")),
    ("account.new_demarche", _l("Nouvelle démarche en ligne")),
    ("account.index", _l("Profil")),
    ("account.security", _l("Sécurité")),
    ("account.preferences", _l("Préférences")),
    ("account.relations", _l("Mes relations")),
    ("account.applications", _l("Applications")),
    ("account.privacy", _l("Confidentialité")),
)


def page(template: str, status: int = 200, *, section: str, **context):
    """Render a page of "Mon compte"; ``section`` is the endpoint of its nav entry."""
    return render_template(template, account_sections=SECTIONS, account_section=section,
                           **context), status


def recovery_url() -> str:
    endpoint = "recovery.start" if "recovery.start" in current_app.view_functions \
        else "login.start"
    return absolute_url(endpoint)


def sms_allowed(user: User) -> bool:
    return bool(user.phone_number and user.phone_number_verified)


def notify(user: User, name: str, **context) -> bool:
    """A security notice to the user, by their preferred contact mode.

    By SMS when they chose it, their phone is verified and the message has an SMS
    version; otherwise (or when the SMS cannot go) by e-mail to the contact address
    (verified by code), or the login address. Security notices are sent whatever
    ``notifications_email`` says."""
    locale = user.locale or services().settings.default_locale
    if user.preferred_contact == "sms" and sms_allowed(user):
        if send_sms(user.phone_number, name, locale, **context):
            return True
    return send_email(user.contact_email or user.email, name, locale, **context)
