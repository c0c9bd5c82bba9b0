"""Second factor: TOTP (RFC 6238) and recovery codes. No Flask here.

TOTP
- 30-second steps, 6 digits, SHA-1 (what every authenticator app supports), a code is
  accepted one step early or late (clock drift), and **once**: the accepted time step is
  written to ``MfaCredential.last_used_step`` by one conditional UPDATE
  (``last_used_step IS NULL OR last_used_step < step``), so that two concurrent
  submissions of one code cannot both pass, and a code older than one already used is
  refused too (RFC 6238 §5.2).
- The shared secret is stored sealed (AES-256-GCM, key derived from the application's
  secret key, bound to the credential's user): a database dump alone does not give it
  away. Rotating ``secret_key`` therefore invalidates enrolled authenticators.

Recovery codes
- ``RECOVERY_CODE_COUNT`` codes of 12 characters (about 60 bits), shown once. Each is
  stored as a consumable of kind ``mfa_recovery`` whose lookup is the SHA-256 of a keyed
  hash of (user id, code): found without scanning, bound to its owner, useless to whoever
  reads the table without the key. Used up by ``consume_bearer`` (one atomic UPDATE).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
import time

import pyotp
import segno
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from ..persistence import consumables
from ..persistence.models import Consumable, MfaCredential, User, utcnow

STEP = 30
DIGITS = 6
WINDOW = 1  # steps accepted before and after the current one
RECOVERY_KIND = "mfa_recovery"
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L
RECOVERY_CODE_LENGTH = 12
RECOVERY_CODE_TTL = 20 * 365 * 24 * 3600  # recovery codes do not expire in practice
# An enrolment left unconfirmed keeps its secret (and QR code) this long.
PENDING_TTL = 15 * 60
_SEALED_PREFIX = "v1:"


def clock() -> float:
    """The current time; tests replace it to freeze the clock."""
    return time.time()


# -- secret handling ------------------------------------------------------------------------
def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, as RFC 4226 recommends


def _sealing_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"compte-usager/mfa-totp-secret",
                    hashlib.sha256).digest()


def seal(secret_key: str, user_id: str, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_sealing_key(secret_key)).encrypt(nonce, secret.encode(), user_id.encode())
    return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(secret_key: str, user_id: str, stored: str) -> str:
    if not stored.startswith(_SEALED_PREFIX):
        return stored  # written in clear by an older version or a fixture
    raw = base64.urlsafe_b64decode(stored[len(_SEALED_PREFIX):])
    return AESGCM(_sealing_key(secret_key)).decrypt(raw[:12], raw[12:], user_id.encode()).decode()


def group_key(secret: str, size: int = 4) -> str:
    """The key as shown for typing by hand: ``ABCD EFGH IJKL ...``."""
    return " ".join(secret[i:i + size] for i in range(0, len(secret), size))


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=account, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The otpauth URI as an SVG QR code in a data: URI (CSP: img-src 'self' data:)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=4, dark="#000",
                                                  light="#fff")


# -- TOTP ---------------------------------------------------------------------------------
def normalise_totp(raw: str | None) -> str | None:
    """Digits only (spaces and dashes people type are dropped); None if not a code."""
    if not isinstance(raw, str):
        return None
    code = "".join(ch for ch in raw if not ch.isspace() and ch != "-")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    return code


def matching_step(secret: str, code: str, at: float | None = None,
                  window: int = WINDOW) -> int | None:
    """The time step (``at`` ± ``window``) whose code is ``code``, or None."""
    now = clock() if at is None else at
    current = int(now // STEP)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    found = None
    for step in range(current - window, current + window + 1):
        # Compare every candidate (no early exit): constant work whatever the code.
        if hmac.compare_digest(totp.at(step * STEP), code):
            found = step
    return found


class TotpResult:
    OK = "ok"
    WRONG = "wrong"
    REPLAYED = "replayed"


def check_totp(session: Session, credential: MfaCredential, raw_code: str | None,
               secret_key: str) -> str:
    """Check a code against ``credential`` and use it up. One of ``TotpResult``."""
    code = normalise_totp(raw_code)
    if code is None:
        return TotpResult.WRONG
    secret = unseal(secret_key, credential.user_id, credential.secret)
    step = matching_step(secret, code)
    if step is None:
        return TotpResult.WRONG
    used = session.execute(
        update(MfaCredential)
        .where(MfaCredential.id == credential.id,
               or_(MfaCredential.last_used_step.is_(None),
                   MfaCredential.last_used_step < step))
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)).rowcount
    if used != 1:
        return TotpResult.REPLAYED
    session.refresh(credential)
    return TotpResult.OK


def active_credential(session: Session, user: User) -> MfaCredential | None:
    return session.scalar(select(MfaCredential).where(
        MfaCredential.user_id == user.id, MfaCredential.kind == "totp",
        MfaCredential.confirmed_at.is_not(None)
    ).order_by(MfaCredential.confirmed_at.desc()).limit(1))


def pending_credential(session: Session, user: User, secret_key: str) -> MfaCredential:
    """The unconfirmed credential being enrolled: the recent one, or a new one."""
    recent = session.scalar(select(MfaCredential).where(
        MfaCredential.user_id == user.id, MfaCredential.confirmed_at.is_(None),
        MfaCredential.created_at > utcnow() - dt.timedelta(seconds=PENDING_TTL)
    ).order_by(MfaCredential.created_at.desc()).limit(1))
    if recent is not None:
        return recent
    session.execute(delete(MfaCredential).where(MfaCredential.user_id == user.id,
                                                MfaCredential.confirmed_at.is_(None)))
    credential = MfaCredential(user_id=user.id, kind="totp",
                               secret=seal(secret_key, user.id, new_secret()))
    session.add(credential)
    session.flush()
    return credential


def confirm_credential(session: Session, user: User, credential: MfaCredential) -> None:
    """Make ``credential`` the user's authenticator; any other one is removed."""
    credential.confirmed_at = utcnow()
    session.execute(delete(MfaCredential).where(MfaCredential.user_id == user.id,
                                                MfaCredential.id != credential.id))
    session.expire(user, ["mfa_credentials"])


def remove_all(session: Session, user: User) -> None:
    session.execute(delete(MfaCredential).where(MfaCredential.user_id == user.id))
    revoke_recovery_codes(session, user)
    session.expire(user, ["mfa_credentials"])


# -- recovery codes -------------------------------------------------------------------------
def normalise_recovery_code(raw: str | None) -> str | None:
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    code = "".join(ch for ch in raw.upper() if ch.isalnum())
    if len(code) != RECOVERY_CODE_LENGTH or not code.isascii():
        return None
    return code


def format_recovery_code(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _recovery_value(secret_key: str, user_id: str, code: str) -> str:
    return consumables.code_digest(secret_key, f"{RECOVERY_KIND}:{user_id}", code)


def revoke_recovery_codes(session: Session, user: User) -> int:
    return consumables.revoke_where(session, Consumable.kind == RECOVERY_KIND,
                                    Consumable.user_id == user.id)


def new_recovery_codes(session: Session, user: User, secret_key: str) -> list[str]:
    """Replace the user's recovery codes; returns the new ones, formatted, to show once."""
    revoke_recovery_codes(session, user)
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
             for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        consumables.issue_bearer(session, RECOVERY_KIND, RECOVERY_CODE_TTL,
                                 value=_recovery_value(secret_key, user.id, code),
                                 user_id=user.id)
    return [format_recovery_code(c) for c in codes]


def use_recovery_code(session: Session, user: User, raw_code: str | None,
                      secret_key: str) -> bool:
    code = normalise_recovery_code(raw_code)
    if code is None:
        return False
    result = consumables.consume_bearer(session, RECOVERY_KIND,
                                        _recovery_value(secret_key, user.id, code))
    return result.ok and result.item is not None and result.item.user_id == user.id


def recovery_codes_left(session: Session, user: User) -> int:
    return session.scalar(select(func.count()).select_from(Consumable).where(
        Consumable.kind == RECOVERY_KIND, Consumable.user_id == user.id,
        Consumable.consumed_at.is_(None), Consumable.revoked_at.is_(None),
        Consumable.expires_at > utcnow())) or 0
