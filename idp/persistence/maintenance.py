"""Housekeeping: delete what has expired, so tables do not grow with time.

Run daily (`idp purge`, from cron or a systemd timer) next to `idp audit purge`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlalchemy.orm import Session

from .db import lift_statement_timeout
from .models import Consumable, Grant, RevokedAccessToken, SsoSession, utcnow

# Used artefacts are kept a little while: a replayed code or refresh token must still be
# recognised as a replay (and revoke its family) shortly after its use.
CONSUMABLE_GRACE = dt.timedelta(days=1)
# Ended sessions stay visible in "Mon compte" for a while.
ENDED_SESSION_RETENTION = dt.timedelta(days=30)


def purge_expired(session: Session, refresh_token_ttl: int) -> dict[str, int]:
    lift_statement_timeout(session)  # a day's codes and tokens on a busy deployment
    now = utcnow()
    counts = {
        "consumables": session.execute(delete(Consumable).where(
            Consumable.expires_at < now - CONSUMABLE_GRACE)).rowcount,
        "revoked_access_tokens": session.execute(delete(RevokedAccessToken).where(
            RevokedAccessToken.expires_at < now)).rowcount,
        "sso_sessions": session.execute(delete(SsoSession).where(
            SsoSession.expires_at < now - ENDED_SESSION_RETENTION)).rowcount,
        # A grant outlives its last refresh token by at most the refresh lifetime.
        "grants": session.execute(delete(Grant).where(
            Grant.created_at < now - dt.timedelta(seconds=refresh_token_ttl)
            - CONSUMABLE_GRACE)).rowcount,
    }
    return counts
