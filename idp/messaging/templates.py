"""Message bodies from Jinja2 templates, outside any request (no Flask needed).

Each message ``<name>`` has ``templates/messages/<name>.<locale>.txt`` whose first
line is ``Subject: ...`` and the rest the plain-text body, and
``<name>.<locale>.html`` (extending ``_base.html``), autoescaped. Messages that may
go by SMS also have a short ``<name>.<locale>.sms.txt``. A locale without its own
template falls back to French.

Every template gets ``service_name``, ``organisation_name`` and ``lang`` (the
locale actually used) besides the caller's context; a missing variable is an
error, so that no message goes out with a blank where a code or link should be.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import jinja2

from idp.config import PROJECT_ROOT
from idp.i18n import french_typography, of_name, sentence_start, to_name
from idp.messaging.base import Purpose

MESSAGES_DIR = PROJECT_ROOT / "templates" / "messages"
FALLBACK_LOCALE = "fr"
DEFAULTS = {"service_name": "Compte usager", "organisation_name": "la Région"}
MESSAGE_NAMES = ("verification_code", "recovery_code", "email_confirmation", "account_exists",
                 "password_changed", "login_email_changed", "mfa_changed", "account_locked",
                 "account_deleted", "mfa_locked", "mfa_reset", "password_reset_required")
# How each message is capped (security.message_guard); codes and links unless listed.
PURPOSES = {"recovery_code": Purpose.SIGN_IN, "password_changed": Purpose.NOTICE,
            "login_email_changed": Purpose.NOTICE, "mfa_changed": Purpose.NOTICE,
            "account_locked": Purpose.NOTICE, "account_deleted": Purpose.NOTICE,
            "mfa_locked": Purpose.NOTICE, "mfa_reset": Purpose.NOTICE,
            "password_reset_required": Purpose.NOTICE}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SUBJECT_PREFIX = "Subject:"


class MessageTemplateError(LookupError):
    pass


def purpose_of(name: str) -> Purpose:
    """The purpose of message ``name``: a notice is never capped, a code is."""
    return PURPOSES.get(name, Purpose.CODE)


@functools.lru_cache(maxsize=4)
def _environment(directory: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    # The organisation's name comes with its article: "{{ organisation_name|of }}".
    env.filters.update(of=of_name, to=to_name, sentence_start=sentence_start)
    return env


def _locale(locale: str) -> str:
    return (locale or FALLBACK_LOCALE).replace("-", "_").split("_")[0].lower()


def _pick(env: jinja2.Environment, name: str, locale: str, suffix: str) -> tuple[jinja2.Template, str]:
    if not _NAME.match(name):
        raise MessageTemplateError(f"bad message name {name!r}")
    for candidate in dict.fromkeys((_locale(locale), FALLBACK_LOCALE)):
        try:
            return env.get_template(f"{name}.{candidate}.{suffix}"), candidate
        except jinja2.TemplateNotFound:
            continue
    raise MessageTemplateError(f"no template for message {name!r} ({suffix})")


def render_message(name: str, locale: str, /, *, templates_dir: Path | str | None = None,
                   **context) -> tuple[str, str, str]:
    """``(subject, text, html)`` of the e-mail ``name`` in ``locale`` (or French)."""
    env = _environment(str(templates_dir or MESSAGES_DIR))
    text_template, used = _pick(env, name, locale, "txt")
    values = {**DEFAULTS, **context, "lang": used}
    first, _, body = text_template.render(values).partition("\n")
    if not first.startswith(_SUBJECT_PREFIX):
        raise MessageTemplateError(f"{name}.{used}.txt must start with '{_SUBJECT_PREFIX}'")
    subject = " ".join(first[len(_SUBJECT_PREFIX):].split())
    html_template, _ = _pick(env, name, used, "html")
    html = html_template.render(values)
    body = body.strip() + "\n"
    if used == "fr":  # French spacing, as on the pages (not in SMS: it would cost more)
        subject, body, html = (french_typography(part) for part in (subject, body, html))
    return subject, body, html


def render_sms(name: str, locale: str, /, *, templates_dir: Path | str | None = None,
               **context) -> str:
    """The short SMS text of message ``name`` in ``locale`` (or French)."""
    env = _environment(str(templates_dir or MESSAGES_DIR))
    template, used = _pick(env, name, locale, "sms.txt")
    return " ".join(template.render({**DEFAULTS, **context, "lang": used}).split())
