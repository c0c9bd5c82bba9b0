"""Double authentification in "Mon compte" (``/compte/mfa/``): its status, setting up an
authenticator app (or replacing it), new recovery codes, switching it off.

Every change needs a recent password (``recent_auth_required``) and is notified by e-mail
(``mfa_changed``). What the password alone may not do (whoever found it must not bind the
account to his phone, nor unbind the owner's): set up a first app (a code sent to the
login address first), replace the app or switch it off (a code of the current app, or a
recovery code, counted per account: ``flows/mfa_setup.check_code``).

The login's second-factor step is ``idp/flows/mfa.py``.
"""

from __future__ import annotations

import functools
import time

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from ..flows.mfa_setup import (AddressCheck, AnyCodeForm, ConfirmForm, TotpForm, check_code,
                               confirm_enrolment, enrolment_page, notify,
                               population_requires)
from ..persistence.models import User
from ..security import mfa
from ..services import audit, services
from ..web.auth import login_required, recent_auth_required
from ..web.common import add_error
from . import bp
from .common import page

SECTION = "account.security"
# The browser session remembers, for mfa.PENDING_TTL, a code of the current app typed
# before replacing it, and the login address confirmed before a first app.
REPLACE_KEY = "account_mfa_replace"
ADDRESS_KEY = "account_mfa_address"


@bp.route("/mfa/")
@login_required
def mfa_status():
    db = services().db.session
    user = g.user
    return page("account/mfa.html", section=SECTION, user=user, enabled=user.mfa_enabled,
                required=population_requires(user),
                codes_left=mfa.recovery_codes_left(db, user))


def _may_replace(user: User) -> bool:
    proof = session.get(REPLACE_KEY)
    return isinstance(proof, dict) and proof.get("user") == user.id \
        and isinstance(proof.get("until"), (int, float)) and proof["until"] > time.time()


def _replace_check(user: User, action_url: str):
    """Before replacing the app: a code of the current one, or a recovery code."""
    form = AnyCodeForm()
    if request.method == "POST" and form.validate_on_submit():
        verdict = check_code(user, form.code.data, context="replace")
        if verdict.ok:
            session[REPLACE_KEY] = {"user": user.id, "until": time.time() + mfa.PENDING_TTL}
            return redirect(action_url, code=303)
        add_error(form.code, verdict.message)
    status = 200 if request.method == "GET" else 400
    return page("account/mfa_replace.html", status, section=SECTION, form=form)


@bp.route("/mfa/activer", methods=["GET", "POST"])
@recent_auth_required
def mfa_enable():
    user = g.user
    action_url = url_for("account.mfa_enable")
    if user.mfa_enabled:
        if not _may_replace(user):
            return _replace_check(user, action_url)
    else:
        address = AddressCheck(user, "enrol", "account", session, ADDRESS_KEY)
        if not address.confirmed:
            answer = address.step(action_url)
            return answer if answer is not None else redirect(action_url, code=303)
    form = TotpForm()
    if request.method == "POST" and form.validate_on_submit():
        codes = confirm_enrolment(user, form)
        if codes is not None:
            session.pop(REPLACE_KEY, None)
            session.pop(ADDRESS_KEY, None)
            return render_template("mfa/recovery_codes.html", codes=codes,
                                   continue_url=url_for("account.mfa_status"), enrolled=True)
    status = 200 if request.method == "GET" else 400
    return enrolment_page(user, form, action_url, status, reason="account",
                          replacing=user.mfa_enabled)


def _mfa_enabled_required(view):
    """Pages about an enabled second factor: a recent password, and back to the status
    page when there is none."""
    @functools.wraps(view)
    @recent_auth_required
    def wrapper():
        if not g.user.mfa_enabled:
            return redirect(url_for("account.mfa_status"))
        svc = services()
        return view(svc, svc.db.session, g.user)
    return wrapper


@bp.route("/mfa/codes-de-secours", methods=["GET", "POST"])
@_mfa_enabled_required
def mfa_regenerate(svc, db, user: User):
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        codes = mfa.new_recovery_codes(db, user, svc.secret_key)
        audit("mfa.recovery_codes_renewed", user_id=user.id)
        db.commit()
        notify(user, "recovery_codes")
        return render_template("mfa/recovery_codes.html", codes=codes,
                               continue_url=url_for("account.mfa_status"), enrolled=False)
    return page("account/mfa_regenerate.html", section=SECTION, form=form,
                codes_left=mfa.recovery_codes_left(db, user))


@bp.route("/mfa/desactiver", methods=["GET", "POST"])
@_mfa_enabled_required
def mfa_disable(svc, db, user: User):
    if population_requires(user):
        return page("account/mfa_disable.html", 403, section=SECTION, form=None,
                    required=True)
    form = AnyCodeForm()
    if request.method == "POST" and form.validate_on_submit():
        verdict = check_code(user, form.code.data, context="disable")
        if verdict.ok:
            mfa.remove_all(db, user)
            audit("mfa.disabled", user_id=user.id)
            db.commit()
            notify(user, "disabled")
            flash(_("La double authentification est désactivée."), "success")
            return redirect(url_for("account.mfa_status"), code=303)
        add_error(form.code, verdict.message)
    status = 200 if request.method == "GET" else 400
    return page("account/mfa_disable.html", status, section=SECTION, form=form,
                required=False)
