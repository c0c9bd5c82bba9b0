"""What every page of "Mon compte" shares: rendering, notices sent to the user, dates."""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l

from ..web.common import absolute_url, format_when, ui_locale  # noqa: F401 (used by the sections)
from ..web.common import send_templated_email as send_email
from ..web.common import send_templated_sms as send_sms  # noqa: F401 (used by the sections)
from ..web.notices import recovery_url, security_notice, sms_allowed  # noqa: F401
from ..persistence.models import User

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


def notify(user: User, name: str, **context) -> bool:
    """A security notice to the user (idp.web.notices: one rule for all of them)."""
    return security_notice(user, name, **context)
