"""Telling relying parties that a session has ended (OIDC Back-Channel Logout 1.0).

A session ends by logout, by expiry, by a password reset or by the account's deletion.
The ending itself only marks the SSO session; propagation works from the database, so
that nothing is lost with a dropped connection or a restarted process:

1. :func:`schedule` ends the sessions that expired or sat idle, then queues one
   :class:`LogoutDelivery` per client of every ended session that has a
   ``backchannel_logout_uri`` (and marks the session propagated, once);
2. :func:`deliver_due` posts a signed logout token to each due delivery, and on
   failure retries with backoff (:data:`BACKOFF`), then gives up; every failure is in
   the audit trail.

Each process runs both every few seconds (:class:`Propagator`, a daemon thread), and
``idp logout deliver`` runs them once (for a timer). On PostgreSQL concurrent runners
never pick the same delivery (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from typing import Any

import requests
from flask import Flask
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..identity import sso as sso_service
from ..persistence.models import Client, LogoutDelivery, SsoSession, utcnow
from ..security.audit import record_event
from ..services import Services
from .claims import subject_for

log = logging.getLogger(__name__)

EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYP = "logout+jwt"
LOGOUT_TOKEN_TTL = 120
# Seconds before each new attempt; after the last one the delivery is abandoned.
BACKOFF = (30, 120, 600, 3600, 6 * 3600)
POST_TIMEOUT = 5
BATCH = 50


def logout_token(svc: Services, client: Client, subject: str, sid: str) -> str:
    """A logout token (§2.4): iss, aud, iat, exp, jti, sub, sid and the event; never a
    nonce."""
    now = int(time.time())
    claims = {"iss": svc.settings.issuer, "aud": client.client_id, "iat": now,
              "exp": now + LOGOUT_TOKEN_TTL, "jti": secrets.token_urlsafe(16),
              "sub": subject, "sid": sid, "events": {EVENT: {}}}
    return svc.tokens.sign(claims, svc.tokens.id_token_alg(client), LOGOUT_TOKEN_TYP)


def queue_for_session(session: Session, svc: Services, sso: SsoSession, user_id: str,
                      reason: str) -> int:
    """Queue the deliveries of one ended session; the number queued."""
    queued = 0
    for client_id in sso.clients:
        client = svc.clients.get(session, client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        session.add(LogoutDelivery(client_id=client_id, user_id=user_id, reason=reason,
                                   subject=subject_for(user_id, client, svc.pairwise_salt),
                                   sid=sso.id))
        queued += 1
    return queued


def schedule(session: Session, svc: Services) -> int:
    """End the sessions that expired or sat idle, and queue the deliveries of every
    ended session not yet propagated. Commits; the number of deliveries queued."""
    now = utcnow()
    idle_limit = now - dt.timedelta(seconds=svc.settings.session.idle_timeout) \
        - sso_service.LAST_SEEN_RESOLUTION
    for sso in session.scalars(select(SsoSession).where(
            SsoSession.ended_at.is_(None),
            or_(SsoSession.expires_at <= now, SsoSession.last_seen_at < idle_limit)).limit(BATCH)):
        sso_service.end(session, sso, "expired")
    session.flush()
    queued = 0
    for sso in session.scalars(select(SsoSession).where(
            SsoSession.ended_at.is_not(None), SsoSession.logout_propagated_at.is_(None))
            .limit(BATCH)):
        claimed = session.execute(
            update(SsoSession).where(SsoSession.id == sso.id,
                                     SsoSession.logout_propagated_at.is_(None))
            .values(logout_propagated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if claimed:  # another runner may have taken it meanwhile
            queued += queue_for_session(session, svc, sso, sso.user_id,
                                        sso.ended_reason or "ended")
    session.commit()
    return queued


def queue_for_user(session: Session, svc: Services, user_id: str, reason: str) -> int:
    """Before an account is deleted (its sessions go with it): queue the deliveries of
    all its sessions not yet propagated, in the caller's transaction."""
    queued = 0
    for sso in session.scalars(select(SsoSession).where(
            SsoSession.user_id == user_id, SsoSession.logout_propagated_at.is_(None))):
        sso.logout_propagated_at = utcnow()
        queued += queue_for_session(session, svc, sso, user_id, reason)
    return queued


def post(uri: str, token: str) -> str | None:
    """POST the token (§2.5); None when the client took it, else why not."""
    try:
        response = requests.post(uri, data={"logout_token": token}, timeout=POST_TIMEOUT,
                                 headers={"Cache-Control": "no-store"},
                                 allow_redirects=False)
    except requests.RequestException as exc:
        return type(exc).__name__
    return None if response.status_code in (200, 204) else f"HTTP {response.status_code}"


def deliver_due(session: Session, svc: Services) -> dict[str, int]:
    """Send the deliveries that are due; commits each outcome. Counts by outcome."""
    now = utcnow()
    due = select(LogoutDelivery).where(
        LogoutDelivery.delivered_at.is_(None), LogoutDelivery.abandoned_at.is_(None),
        LogoutDelivery.next_attempt_at <= now).order_by(
        LogoutDelivery.next_attempt_at).limit(BATCH).with_for_update(skip_locked=True)
    outcomes = {"delivered": 0, "failed": 0, "abandoned": 0}
    for delivery in list(session.scalars(due)):
        client = svc.clients.get(session, delivery.client_id)
        error = "client gone" if client is None or not client.backchannel_logout_uri \
            else post(client.backchannel_logout_uri,
                      logout_token(svc, client, delivery.subject, delivery.sid))
        delivery.attempts += 1
        if error is None:
            delivery.delivered_at = utcnow()
            outcomes["delivered"] += 1
        else:
            delivery.last_error = error[:200]
            given_up = delivery.attempts > len(BACKOFF) or client is None
            if given_up:
                delivery.abandoned_at = utcnow()
            else:
                delivery.next_attempt_at = utcnow() + dt.timedelta(
                    seconds=BACKOFF[delivery.attempts - 1])
            outcomes["abandoned" if given_up else "failed"] += 1
            record_event(session, "logout.backchannel_abandoned" if given_up
                         else "logout.backchannel_failed", outcome="failure",
                         user_id=None, client_id=delivery.client_id,
                         details={"attempts": delivery.attempts, "error": error[:200],
                                  "sid": delivery.sid})
    session.commit()
    return outcomes


def propagate(svc: Services) -> dict[str, Any]:
    """One pass: schedule, then deliver (its own session)."""
    session = svc.db.session_factory()
    try:
        queued = schedule(session, svc)
        return {"queued": queued, **deliver_due(session, svc)}
    finally:
        session.close()


class Propagator:
    """Runs :func:`propagate` every ``interval`` seconds in a daemon thread of this
    process, and at once when woken (a logout just happened)."""

    def __init__(self, app: Flask, interval: float) -> None:
        self.app = app
        self.interval = interval
        self.woken = threading.Event()
        self.thread = threading.Thread(target=self.run, name="logout-propagation",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self.woken.set()

    def run(self) -> None:
        svc: Services = self.app.extensions["idp"]
        while True:
            self.woken.wait(self.interval)
            self.woken.clear()
            try:
                with self.app.app_context():
                    propagate(svc)
            except Exception:  # noqa: BLE001 - an outage must not end the thread
                log.warning("logout propagation failed; retried at the next pass",
                            exc_info=True)
