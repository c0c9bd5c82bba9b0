"""Forms of the admin console (French messages, CSRF through Flask-WTF)."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from wtforms import (BooleanField, DateField, IntegerField, SelectField, StringField,
                     TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (DataRequired, InputRequired, Length, NumberRange, Optional,
                                ValidationError)

from ..web.forms import BaseForm
from .clients import ClientError, check_uri, check_page_url


def uri_lines(text: str | None) -> list[str]:
    """One URI per line, blank lines ignored, duplicates dropped (order kept)."""
    seen: list[str] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if line and line not in seen:
            seen.append(line)
    return seen


class UriList:
    """Validates a textarea of URIs, one per line, with the registry's own rules."""

    def __init__(self, required: bool = False) -> None:
        self.required = required

    def __call__(self, form, field) -> None:
        uris = uri_lines(field.data)
        if self.required and not uris:
            raise ValidationError(_l("Indiquez au moins une adresse."))
        if len(uris) > 20:
            raise ValidationError(_l("20 adresses au plus."))
        for uri in uris:
            if len(uri) > 500:
                raise ValidationError(_l("Une adresse est trop longue (500 caractères au plus)."))
            try:
                check_uri(uri, "uri")
            except ClientError:
                raise ValidationError(_l(
                    "Adresse refusée : %(uri)s. Une adresse complète en https est attendue, "
                    "sans fragment (#) ni joker (*) ; http n'est admis que pour localhost.",
                    uri=uri)) from None


def _optional_url(form, field) -> None:
    if field.data:
        try:
            check_page_url(field.data, "url")
        except ClientError:
            raise ValidationError(_l("Une adresse complète en https est attendue ; http "
                                     "n'est admis que pour localhost.")) from None


class ClientEditForm(BaseForm):
    name = StringField(_l("Nom de l'application"), validators=[
        DataRequired(message=_l("Indiquez le nom de l'application.")),
        Length(max=200, message=_l("200 caractères au plus."))])
    home_url = StringField(_l("Adresse d'accueil de l'application"), validators=[
        Optional(), Length(max=500, message=_l("500 caractères au plus.")), _optional_url])
    redirect_uris = TextAreaField(_l("Adresses de retour (redirect_uri)"),
                                  validators=[UriList()], render_kw={"rows": 3})
    post_logout_redirect_uris = TextAreaField(
        _l("Adresses de retour après déconnexion"), validators=[UriList()],
        render_kw={"rows": 3})
    require_consent = BooleanField(_l("Demander le consentement de l'usager"))
    listed = BooleanField(_l("Afficher dans le catalogue de « Mon compte »"))


class ClientCreateForm(ClientEditForm):
    redirect_uris = TextAreaField(_l("Adresses de retour (redirect_uri)"),
                                  validators=[UriList(required=True)], render_kw={"rows": 3})
    auth_method = SelectField(_l("Authentification de l'application"), choices=[
        SelectChoice("client_secret_basic", _l("Secret (HTTP Basic)")),
        SelectChoice("client_secret_post", _l("Secret (dans le corps de la requête)")),
        SelectChoice("none", _l("Application publique, sans secret (PKCE)")),
    ], default="client_secret_basic")
    description = TextAreaField(_l("Description"), validators=[
        Optional(), Length(max=2000, message=_l("2000 caractères au plus."))])


class ConfirmForm(BaseForm):
    """A form with nothing but its CSRF token (delete, rotate, disable, enable)."""


class AuditFilterForm(BaseForm):
    class Meta:
        csrf = False  # a GET search form

    type = StringField(_l("Type d'événement"), validators=[Optional(), Length(max=64)],
                       description=_l("Par exemple « login » ou « admin. » (début du type)."))
    user = StringField(_l("Usager (identifiant ou adresse e-mail)"),
                       validators=[Optional(), Length(max=320)])
    client = StringField(_l("Application (client_id)"), validators=[Optional(), Length(max=64)])
    start = DateField(_l("Du"), validators=[Optional()],
                      render_kw={"placeholder": "AAAA-MM-JJ"})
    end = DateField(_l("Au"), validators=[Optional()], render_kw={"placeholder": "AAAA-MM-JJ"})

    def validate_end(self, field) -> None:
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError(_l("La date de fin précède la date de début."))

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        def at(day: dt.date | None, extra: int) -> dt.datetime | None:
            if day is None:
                return None
            return dt.datetime.combine(day, dt.time(), dt.timezone.utc) + dt.timedelta(days=extra)
        return at(self.start.data, 0), at(self.end.data, 1)


class LockForm(BaseForm):
    reason = TextAreaField(_l("Motif du verrouillage"), validators=[
        DataRequired(message=_l("Indiquez le motif du verrouillage.")),
        Length(max=500, message=_l("500 caractères au plus."))], render_kw={"rows": 2})


class InitialTokenForm(BaseForm):
    label = StringField(_l("Pour qui, pour quoi"), validators=[
        DataRequired(message=_l("Indiquez à qui ce jeton est destiné.")),
        Length(max=200, message=_l("200 caractères au plus."))],
        description=_l("Par exemple « Portail des aides, environnement de recette ». "
                       "Visible des seuls administrateurs."))
    days = IntegerField(_l("Durée de validité (en jours)"), validators=[
        InputRequired(message=_l("Indiquez une durée de validité en jours.")),
        NumberRange(min=1, message=_l("Au moins un jour."))],
        render_kw={"inputmode": "numeric"})
    max_uses = IntegerField(_l("Nombre d'enregistrements permis"), validators=[
        Optional(), NumberRange(min=1, max=1000, message=_l("Entre 1 et 1000."))],
        description=_l("Laissez vide pour ne pas limiter le nombre d'applications "
                       "enregistrées avec ce jeton pendant sa validité."),
        render_kw={"inputmode": "numeric"})

    def __init__(self, *args, max_days: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_days = max_days

    def validate_days(self, field) -> None:
        if field.data is not None and field.data > self.max_days:
            raise ValidationError(_l("%(days)d jours au plus.", days=self.max_days))
