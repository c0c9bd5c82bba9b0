"""Form helpers shared by the flows: WTForms with French messages, through i18n."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length


class BaseForm(FlaskForm):
    class Meta:
        # Render errors in the user's language (French first).
        locales = ("fr_FR", "fr")


def email_field(label=None) -> EmailField:
    return EmailField(label or _l("Adresse e-mail"), validators=[
        DataRequired(message=_l("Saisissez votre adresse e-mail.")),
        Length(max=320, message=_l("L'adresse e-mail est trop longue."))],
        render_kw={"autocomplete": "username", "spellcheck": "false"})


def password_field(label=None, autocomplete: str = "current-password") -> PasswordField:
    return PasswordField(label or _l("Mot de passe"), validators=[
        DataRequired(message=_l("Saisissez votre mot de passe.")),
        Length(max=1024, message=_l("Le mot de passe est trop long."))],
        render_kw={"autocomplete": autocomplete})
