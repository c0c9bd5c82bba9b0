"""Forms of "Mon compte". Every message is French (msgids), through Flask-Babel."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, StopValidation
from wtforms.widgets import DateInput

from ..web.forms import BaseForm, email_field, link_code_field, password_field

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")


class DateField(StringField):
    """A date typed as ``2010-03-12`` (date picker) or ``12/03/2010`` (by hand).

    A value that is not a date keeps what was typed and gets a French error, instead
    of WTForms' English one."""

    widget = DateInput()

    def __init__(self, *args, min_year: int = 1900, future: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.raw = ""
        self.min_year = min_year
        self.future = future

    def process_formdata(self, valuelist):
        self.raw = (valuelist[0] if valuelist else "").strip()[:40]
        self.data = None
        for fmt in DATE_FORMATS:
            try:
                self.data = dt.datetime.strptime(self.raw, fmt).date()
                break
            except ValueError:
                continue

    def _value(self):
        if isinstance(self.data, dt.date):
            return self.data.isoformat()
        return self.raw

    def pre_validate(self, form):
        if self.raw and self.data is None:
            raise StopValidation(_l("Saisissez une date valide, par exemple 14/07/1990."))
        if self.data is not None:
            if self.data.year < self.min_year:
                raise StopValidation(_l("Cette date est trop ancienne."))
            if not self.future and self.data > dt.date.today():
                raise StopValidation(_l("Cette date est dans le futur."))


INVALID_CHOICE = _l("Choisissez une des options proposées.")


def _choices(*pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


def _text(label, *, required: str | None = None, max_length: int = 200, too_long=None,
          **render_kw) -> StringField:
    validators = [DataRequired(message=required)] if required else [Optional()]
    validators.append(Length(max=max_length, message=too_long or _l("Ce texte est trop long.")))
    return StringField(label, validators=validators, render_kw=render_kw or None)


class ProfileForm(BaseForm):
    given_name = _text(_l("Prénom"), required=_l("Saisissez votre prénom."),
                       autocomplete="given-name")
    family_name = _text(_l("Nom"), required=_l("Saisissez votre nom."),
                        autocomplete="family-name")
    birthdate = DateField(_l("Date de naissance (facultatif)"),
                          render_kw={"autocomplete": "bday"})
    street_address = TextAreaField(_l("Adresse (facultatif)"), validators=[
        Optional(), Length(max=500, message=_l("L'adresse est trop longue."))],
        render_kw={"autocomplete": "street-address", "rows": 3})
    postal_code = _text(_l("Code postal (facultatif)"), max_length=20,
                        autocomplete="postal-code", inputmode="numeric")
    locality = _text(_l("Commune (facultatif)"), autocomplete="address-level2")
    country = _text(_l("Pays (facultatif)"), max_length=100, autocomplete="country-name")


class PhoneForm(BaseForm):
    phone = StringField(_l("Nouveau numéro de téléphone"), validators=[
        DataRequired(message=_l("Saisissez un numéro de téléphone."))],
        render_kw={"autocomplete": "tel", "inputmode": "tel", "type": "tel"})


class ContactEmailForm(BaseForm):
    email = email_field(_l("Nouvelle adresse e-mail de contact"))


class CodeForm(BaseForm):
    code = StringField(_l("Code de validation"), validators=[
        DataRequired(message=_l("Saisissez le code reçu."))],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                   "spellcheck": "false", "class": "code-input"})


class LinkCodeForm(BaseForm):
    code = link_code_field()


class PasswordChangeForm(BaseForm):
    current_password = password_field(_l("Mot de passe actuel"))
    new_password = password_field(_l("Nouveau mot de passe"), autocomplete="new-password")
    confirm_password = password_field(_l("Confirmez le nouveau mot de passe"),
                                      autocomplete="new-password")


class LoginEmailForm(BaseForm):
    new_email = email_field(_l("Nouvelle adresse e-mail de connexion"))


class PreferencesForm(BaseForm):
    notifications_email = BooleanField(_l("Recevoir les notifications par e-mail "
                                          "(suivi de vos démarches, messages des services)"))
    preferred_contact = RadioField(_l("Mode de contact préféré"), choices=_choices(
        ("email", _l("Par e-mail")), ("sms", _l("Par SMS"))),
        invalid_choice_message=INVALID_CHOICE,
        validators=[InputRequired(message=_l("Choisissez un mode de contact."))])
    locale = SelectField(_l("Langue"), choices=_choices(("fr", "Français"), ("en", "English")),
                         invalid_choice_message=INVALID_CHOICE,
                         validators=[InputRequired(message=_l("Choisissez une langue."))])


RELATIONSHIPS = (
    ("child", _l("Enfant")), ("spouse", _l("Conjoint ou conjointe")), ("parent", _l("Parent")),
    ("other", _l("Autre personne")),
)
IDENTIFIER_TYPES = (
    ("siret", _l("SIRET (France, 14 chiffres)")),
    ("ridet", _l("RIDET (Nouvelle-Calédonie, 7 chiffres et 3 chiffres d'établissement)")),
)


class PersonForm(BaseForm):
    relationship = SelectField(_l("Lien avec vous"), choices=_choices(
        ("", _l("Choisissez")), *RELATIONSHIPS), invalid_choice_message=INVALID_CHOICE,
        validators=[DataRequired(message=_l("Choisissez le lien avec vous."))])
    given_name = _text(_l("Prénom"), required=_l("Saisissez le prénom."))
    family_name = _text(_l("Nom"), required=_l("Saisissez le nom."))
    birthdate = DateField(_l("Date de naissance (facultatif)"))


class OrganisationForm(BaseForm):
    organisation_name = _text(_l("Nom de l'organisme"), max_length=300,
                              required=_l("Saisissez le nom de l'organisme."),
                              autocomplete="organization")
    identifier_type = RadioField(_l("Type de numéro"), choices=_choices(*IDENTIFIER_TYPES),
                                 invalid_choice_message=INVALID_CHOICE,
                                 validators=[InputRequired(
                                     message=_l("Choisissez le type de numéro."))])
    identifier = _text(_l("Numéro SIRET ou RIDET"), max_length=40,
                       required=_l("Saisissez le numéro de l'organisme."),
                       inputmode="numeric", spellcheck="false")
    role = _text(_l("Votre rôle (président, gérant, trésorier, salarié...)"), max_length=100,
                 required=_l("Saisissez votre rôle dans l'organisme."),
                 autocomplete="organization-title")


class DeleteAccountForm(BaseForm):
    confirm = BooleanField(_l("Je comprends que la suppression de mon compte est définitive"),
                           validators=[DataRequired(
                               message=_l("Cochez la case pour confirmer la suppression."))])


class ButtonForm(BaseForm):
    """A form with only its CSRF token: buttons that change something."""
