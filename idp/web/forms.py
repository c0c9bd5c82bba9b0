"""Form helpers shared by the flows: WTForms with French messages, through i18n."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


# C0 control characters and DEL, but for tab, line feed and carriage return (a text
# area's). Kept out of names and addresses that relying parties prefill their forms with.
# A NUL never gets this far (idp/security/input_guard.py).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BaseForm(FlaskForm):
    class Meta:
        # Render errors in the user's language (French first).
        locales = ("fr_FR", "fr")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            # Passwords are hashed, never shown nor shared; one set before this check
            # must keep working.
            if isinstance(field, PasswordField) or not isinstance(field.data, str):
                continue
            if CONTROL_CHARACTERS.search(field.data):
                field.errors = [*field.errors, _l(
                    "Ce champ contient un caractère invisible non autorisé : "
                    "retirez-le puis envoyez de nouveau le formulaire.")]
                valid = False
        return valid


def email_field(label=None) -> EmailField:
    return EmailField(label or _l("Adresse e-mail"), validators=[
        DataRequired(message=_l("Saisissez votre adresse e-mail.")),
        Length(max=320, message=_l("L'adresse e-mail est trop longue."))],
        render_kw={"autocomplete": "username", "spellcheck": "false"})


def link_code_field(label=None) -> StringField:
    """The code of an e-mailed link (security/link_codes.py): filled in from the link's
    fragment by js/fragment-code.js, or typed from the message."""
    return StringField(label or _l("Code de confirmation"), validators=[
        DataRequired(message=_l("Saisissez le code de confirmation reçu par e-mail.")),
        Length(max=600, message=_l("Ce code est trop long."))],
        render_kw={"autocomplete": "one-time-code", "spellcheck": "false",
                   "autocapitalize": "characters", "size": "30",
                   "data-fragment-field": "code"})


def password_field(label=None, autocomplete: str = "current-password") -> PasswordField:
    return PasswordField(label or _l("Mot de passe"), validators=[
        DataRequired(message=_l("Saisissez votre mot de passe.")),
        Length(max=1024, message=_l("Le mot de passe est trop long."))],
        render_kw={"autocomplete": autocomplete})
