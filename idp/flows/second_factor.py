"""The seam between the password step of the login flow and the second factor.

``required(settings, user, wanted_acr)`` tells the login flow whether to continue to the
second-factor step (blueprint ``mfa``, endpoint ``mfa.challenge``) instead of signing the
user in after the password.
"""

from __future__ import annotations

from ..config import Settings
from ..persistence.models import SsoSession, User


def required(settings: Settings, user: User, wanted_acr: str | None) -> bool:
    population = settings.population(user.population)
    # An administrator always signs in with a second factor (the console needs one).
    return bool(user.mfa_enabled or wanted_acr == "eidas2" or user.is_admin
                or (population is not None and population.mfa_required))


def session_has_second_factor(sso: SsoSession) -> bool:
    """Whether this SSO session was established with a second factor (acr ``eidas2``,
    amr ``otp``)."""
    return sso.acr == "eidas2" or "otp" in (sso.amr or [])
