"""Helpers shared by the self-service flows and "Mon compte": errors next to fields,
the new-password rules, links and templated messages."""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape

from ..messaging.email import EmailMessage
from ..messaging.sms import SmsMessage
from ..messaging.templates import MessageTemplateError, purpose_of, render_message, render_sms
from ..security.password_policy import check_password, describe_policy
from ..services import services

log = logging.getLogger(__name__)

DEFAULT_POPULATION = "usager"


def add_error(field, message: str) -> None:
    field.errors = [*list(field.errors or ()), message]


def has_errors(form) -> bool:
    return any(f.errors for f in form)


def password_rules(population: str | None, mfa_enabled: bool = False) -> dict:
    """Arguments of ``check_password``/``describe_policy`` for an account of ``population``:
    the stricter of the global minimum and the population's."""
    settings = services().settings
    minimum = settings.passwords.min_length
    pop = settings.population(population or DEFAULT_POPULATION)
    if pop is not None:
        minimum = max(minimum, pop.password_min_length)
    return {"min_length": minimum, "max_length": settings.passwords.max_length,
            "mfa_enabled": mfa_enabled}


def policy_hint(population: str | None, mfa_enabled: bool = False) -> str:
    rules = password_rules(population, mfa_enabled)
    return describe_policy(rules["min_length"], mfa_enabled=rules["mfa_enabled"],
                           max_length=rules["max_length"])


def check_new_password(password_field_, confirm_field, *, email: str, names: list[str],
                       population: str | None, mfa_enabled: bool = False) -> bool:
    """Policy and confirmation of a new password; errors go next to the fields."""
    password = password_field_.data or ""
    ok = True
    if password_field_.errors:
        ok = False
    else:
        settings = services().settings
        for message in check_password(password, email=email, names=names,
                                      check_common_list=settings.passwords.check_common_list,
                                      **password_rules(population, mfa_enabled)):
            add_error(password_field_, message)
            ok = False
    if not confirm_field.errors and (confirm_field.data or "") != password:
        add_error(confirm_field, _("Les deux mots de passe ne sont pas identiques."))
        ok = False
    return ok and not confirm_field.errors


def absolute_url(endpoint: str, **values) -> str:
    """Links in messages point at the issuer, whatever Host the request came with."""
    return services().settings.issuer + url_for(endpoint, **values)


def ui_locale() -> str:
    return str(get_locale() or services().settings.default_locale)


def language_url(code: str) -> str:
    """This page in language ``code``: the same path and query (a flow's id, an
    authorization request's parameters), with ``lang`` set. A bare ``?lang=`` would drop
    the query, and with it the démarche the citizen was signing in to."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    return request.path + "?" + urlencode([*args, ("lang", code)])


def send_templated_email(to: str, name: str, locale: str, **context) -> bool:
    """Render the message ``name`` and send it, capped as its purpose says
    (``messaging.templates.purpose_of``); False (never an exception) on failure."""
    settings = services().settings
    try:
        subject, text, html = render_message(
            name, locale, service_name=settings.service_name,
            organisation_name=settings.organisation_name, **context)
    except Exception:  # noqa: BLE001 - a broken template must not make a 500
        log.exception("cannot render the message %s", name)
        return False
    return services().messenger.send_email(EmailMessage(to=to, subject=subject, text=text,
                                                        html=html), purpose_of(name))


def send_templated_sms(to_e164: str, name: str, locale: str, **context) -> bool:
    """Render the SMS version of message ``name`` and send it, capped as its purpose
    says; False (never an exception) on failure or when the message has no SMS version."""
    settings = services().settings
    try:
        text = render_sms(name, locale, service_name=settings.service_name,
                          organisation_name=settings.organisation_name, **context)
    except MessageTemplateError:
        return False
    except Exception:  # noqa: BLE001 - a broken template must not make a 500
        log.exception("cannot render the SMS %s", name)
        return False
    return services().messenger.send_sms(SmsMessage(to_e164=to_e164, text=text),
                                         purpose_of(name))


def captcha_error_markup(message: str) -> Markup:
    """The captcha's error in the summary, linked to its answer field."""
    return Markup('<a href="#captcha_answer">{}</a>').format(
        Markup("{} : {}").format(_("Vérification anti-robot"), escape(message)))


def format_when(value: dt.datetime | None, locale: str | None = None,
                timezone: str | None = None) -> str:
    """``23/11/2026 à 14:05 (CET)``: in the user's language and the service's time zone
    (``display_timezone``)."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(timezone or services().settings.display_timezone))
    joiner = "at" if (locale or "fr").startswith("en") else "à"
    return f"{local:%d/%m/%Y} {joiner} {local:%H:%M} ({local.tzname()})"


def captcha_errors() -> list[str]:
    """The captcha's error for the submitted form, if it did not pass."""
    if services().captcha.verify(request.form):
        return []
    return [_("La vérification anti-robot n'a pas abouti. Répondez à la question, puis "
              "renvoyez le formulaire.")]


def checked_email(field) -> str:
    """The field's address, normalised; an error next to the field when it is not valid."""
    from ..identity.users import is_valid_email, normalize_email

    address = normalize_email(field.data or "")
    if not field.errors and not is_valid_email(address):
        add_error(field, _("Saisissez une adresse e-mail valide, par exemple nom@exemple.fr."))
    return address
