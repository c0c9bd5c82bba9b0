"""Sécurité: change the password, change the login e-mail.

Both need a password typed within ``session.reauth_max_age`` (``recent_auth_required``).
A new login e-mail is used only once the link sent to it is followed; the old address
then gets a notice. The link carries its code in the fragment (security/link_codes.py):
the confirmation page's script posts it, or it is typed from the message."""

from __future__ import annotations

from flask import flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..web.common import check_new_password, policy_hint
from ..identity import sso as sso_service
from ..identity.users import is_valid_email, normalize_email
from ..messaging.base import mask_email
from ..messaging.messenger import SEND_FAILED_MESSAGE
from ..persistence import consumables
from ..persistence.models import Consumable, User, utcnow
from ..security import link_codes
from ..services import audit, services
from ..web.auth import current_sso, login_required, recent_auth_required
from . import bp
from .common import absolute_url, format_when, notify, page, recovery_url, send_email, ui_locale
from .forms import LinkCodeForm, LoginEmailForm, PasswordChangeForm

LOGIN_EMAIL_KIND = "login_email_change"
# Wrong current passwords allowed on this page per account and quarter of an hour.
MAX_PASSWORD_FAILURES = 5
FAILURE_WINDOW = 15 * 60


def _pending_change(user: User) -> Consumable | None:
    return services().db.session.scalar(select(Consumable).where(
        Consumable.kind == LOGIN_EMAIL_KIND, Consumable.user_id == user.id,
        Consumable.consumed_at.is_(None), Consumable.revoked_at.is_(None),
        Consumable.expires_at > utcnow()).order_by(Consumable.created_at.desc()).limit(1))


@bp.route("/securite")
@login_required
def security():
    user = g.user
    pending = _pending_change(user)
    return page("account/security.html", section="account.security", user=user,
                pending_email=pending.data.get("new_email") if pending else None,
                password_changed=format_when(user.password_changed_at, ui_locale()))


# -- password --------------------------------------------------------------------------
@bp.route("/securite/mot-de-passe", methods=["GET", "POST"])
@recent_auth_required
def change_password():
    user = g.user
    svc = services()
    form = PasswordChangeForm()
    error = None
    if request.method == "POST" and form.validate_on_submit():
        failures_key = f"account:password-failures:{user.id}"
        if int(svc.kv.get(failures_key) or 0) >= MAX_PASSWORD_FAILURES:
            error = _("Trop d'essais avec un mot de passe actuel incorrect. Réessayez dans "
                      "un quart d'heure, ou utilisez « Mot de passe perdu ».")
        elif not svc.passwords.verify(user.password_hash, form.current_password.data):
            svc.kv.incr(failures_key, FAILURE_WINDOW)
            form.current_password.errors.append(_("Votre mot de passe actuel est incorrect."))
            audit("password.change_failed", outcome="failure", user_id=user.id,
                  reason="wrong_current_password")
            svc.db.session.commit()
        elif check_new_password(form.new_password, form.confirm_password, email=user.email,
                                names=[user.given_name, user.family_name],
                                population=user.population, mfa_enabled=user.mfa_enabled):
            if form.new_password.data == form.current_password.data:
                form.new_password.errors.append(
                    _("Choisissez un mot de passe différent de l'actuel."))
            else:
                _apply_password(user, form.new_password.data)
                svc.kv.delete(failures_key)
                flash(_("Votre mot de passe a été modifié. Vos autres connexions ont été "
                        "fermées."), "success")
                return redirect(url_for("account.security"))
    status = 400 if request.method == "POST" else 200
    return page("account/password.html", status, section="account.security", form=form,
                error=error, policy=policy_hint(user.population, user.mfa_enabled))


def _apply_password(user: User, password: str) -> None:
    svc = services()
    now = utcnow()
    user.password_hash = svc.passwords.hash(password)
    user.password_changed_at = now
    current = current_sso()
    ended = sso_service.end_all_for_user(svc.db.session, user.id, "password_changed",
                                         except_id=current.id if current else None)
    if current is not None:
        current.reauthenticated_at = now
    audit("password.changed", user_id=user.id, other_sessions_ended=ended)
    svc.db.session.commit()
    session.regenerate()
    notify(user, "password_changed", when=format_when(now, user.locale),
           recovery_url=recovery_url())


# -- login e-mail -----------------------------------------------------------------------
@bp.route("/securite/identifiant", methods=["GET", "POST"])
@recent_auth_required
def change_login_email():
    user = g.user
    form = LoginEmailForm()
    error = None
    if request.method == "POST" and form.validate_on_submit():
        new = normalize_email(form.new_email.data)
        if not is_valid_email(new):
            form.new_email.errors.append(_("Saisissez une adresse e-mail valide, par "
                                           "exemple nom@exemple.fr."))
        elif new == user.email:
            form.new_email.errors.append(_("C'est déjà votre adresse e-mail de connexion."))
        else:
            error = _request_login_email(user, new)
            if error is None:
                return redirect(url_for("account.login_email_sent"))
    status = 400 if request.method == "POST" else 200
    return page("account/login_email.html", status, section="account.security", form=form,
                error=error, user=user)


def _request_login_email(user: User, new: str) -> str | None:
    svc = services()
    db = svc.db.session
    consumables.revoke_where(db, Consumable.kind == LOGIN_EMAIL_KIND,
                             Consumable.user_id == user.id)
    taken = db.scalar(select(User.id).where(User.email == new)) is not None
    ttl = svc.settings.registration.email_link_ttl
    session["account_login_email"] = new
    if taken:
        # Same page as a success: which addresses have an account is nobody's business.
        audit("login_email.change_refused", outcome="failure", user_id=user.id,
              reason="address_in_use")
        db.commit()
        return None
    code = link_codes.new_link_code()
    consumables.issue_bearer(
        db, LOGIN_EMAIL_KIND, ttl, value=link_codes.normalise_link_code(code), user_id=user.id,
        destination=f"email:{new}", data={"new_email": new})
    audit("login_email.change_requested", user_id=user.id)
    db.commit()
    link = absolute_url("account.confirm_login_email") + link_codes.fragment(code)
    if not send_email(new, "email_confirmation", ui_locale(), link=link, code=code,
                      expires_hours=max(1, ttl // 3600)):
        consumables.revoke_where(db, Consumable.kind == LOGIN_EMAIL_KIND,
                                 Consumable.user_id == user.id)
        db.commit()
        session.pop("account_login_email", None)
        return _(SEND_FAILED_MESSAGE)
    return None


@bp.route("/securite/identifiant/envoye")
@login_required
def login_email_sent():
    new = session.get("account_login_email")
    if not new:
        return redirect(url_for("account.security"))
    return page("account/login_email_sent.html", section="account.security", new_email=new,
                user=g.user)


def _link_problem(item: Consumable | None, user: User) -> str | None:
    if item is None:
        return _("Ce lien n'est pas valable. Vérifiez que vous l'avez copié en entier.")
    if item.user_id != user.id:
        return _("Ce lien concerne un autre compte. Connectez-vous avec le compte qui a "
                 "demandé le changement.")
    if item.consumed_at is not None:
        return _("Ce lien a déjà été utilisé.")
    if item.revoked_at is not None:
        return _("Ce lien a été remplacé par une demande plus récente ou annulé.")
    if item.expires_at <= utcnow():
        return _("Ce lien a expiré. Recommencez le changement d'adresse.")
    return None


@bp.route("/identifiant/confirmer", methods=["GET", "POST"])
@login_required
def confirm_login_email():
    """GET: the form, the code filled in by the page's script from the link's fragment
    (or from ``?jeton=``, for a link sent before codes moved there). POST: the change."""
    user = g.user
    svc = services()
    db = svc.db.session
    if request.method == "GET":
        form = LinkCodeForm(formdata=None)
        form.code.data = (request.args.get("jeton") or "")[:512] or None
        pending = _pending_change(user)
        return _confirm_page(form, None, pending.data.get("new_email") if pending else None)
    form = LinkCodeForm()
    if not form.validate_on_submit():
        return _confirm_page(form, None, None, 400)
    value = link_codes.stored_value(form.code.data)
    item = consumables.find_bearer(db, LOGIN_EMAIL_KIND, value) if value else None
    problem = _link_problem(item, user)
    if problem is None:
        new = item.data["new_email"]
        if db.scalar(select(User.id).where(User.email == new, User.id != user.id)):
            problem = _("Cette adresse est déjà utilisée par un autre compte : elle ne peut "
                        "pas devenir votre adresse de connexion.")
        else:
            result = consumables.consume_bearer(db, LOGIN_EMAIL_KIND, value)
            if not result.ok:
                problem = _link_problem(result.item, user) or _("Ce lien n'est plus valable.")
            else:
                old = user.email
                user.email = new
                user.email_verified = True
                audit("login_email.changed", user_id=user.id)
                try:
                    db.commit()
                except IntegrityError:
                    db.rollback()
                    problem = _("Cette adresse est déjà utilisée par un autre compte : elle "
                                "ne peut pas devenir votre adresse de connexion.")
                else:
                    session.pop("account_login_email", None)
                    send_email(old, "login_email_changed", user.locale or ui_locale(),
                               when=format_when(utcnow(), user.locale),
                               new_email=mask_email(new))
                    flash(_("Votre adresse e-mail de connexion est désormais %(email)s.",
                            email=new), "success")
                    return redirect(url_for("account.security"))
    return _confirm_page(form, problem, None, 400)


def _confirm_page(form, problem: str | None, new_email: str | None, status: int = 200):
    return page("account/login_email_confirm.html", status, section="account.security",
                form=form, problem=problem, new_email=new_email)
