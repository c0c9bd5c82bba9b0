"""Users: creation, lookup, normalisation. Plain functions over a SQLAlchemy session."""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..persistence.models import User, utcnow
from ..security.passwords import PasswordService

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


class UserError(ValueError):
    pass


def normalize_email(raw: str) -> str:
    email = unicodedata.normalize("NFKC", (raw or "").strip()).lower()
    return email


def is_valid_email(email: str) -> bool:
    return bool(EMAIL_RE.match(email)) and len(email) <= 320


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(session: Session, passwords: PasswordService, *, email: str, password: str,
                given_name: str = "", family_name: str = "", phone_number: str | None = None,
                email_verified: bool = False, population: str = "usager",
                terms_version: str | None = None, is_admin: bool = False) -> User:
    email = normalize_email(email)
    if not is_valid_email(email):
        raise UserError("Adresse e-mail invalide.")
    if find_by_email(session, email) is not None:
        raise UserError("Un compte existe déjà avec cette adresse.")
    now = utcnow()
    user = User(email=email, email_verified=email_verified, password_hash=passwords.hash(password),
                password_changed_at=now, given_name=given_name.strip(),
                family_name=family_name.strip(), phone_number=phone_number,
                population=population, is_admin=is_admin, terms_version=terms_version,
                terms_accepted_at=now if terms_version else None, mfa_credentials=[])
    session.add(user)
    session.flush()
    return user


def authenticate_password(session: Session, passwords: PasswordService, email: str,
                          password: str) -> User | None:
    """The user if the password matches. Unknown emails cost one dummy verification."""
    user = find_by_email(session, email) if email else None
    if user is None or user.disabled:
        passwords.verify_dummy(password)
        return None
    if not passwords.verify(user.password_hash, password):
        return None
    if passwords.needs_rehash(user.password_hash):
        # Parameters were raised since this hash was made: upgrade it now.
        user.password_hash = passwords.hash(password)
    return user
