"""Confidentialité: active sessions, recent security events, export of my data,
deletion of the account."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from typing import Any

from flask import Response, abort, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import logout_user
from sqlalchemy import delete, or_, select

from ..hub import lifecycle as hub_lifecycle
from ..hub.context import pairwise_salt, wallet_store
from ..identity import sso as sso_service
from ..identity.grants import revoke_user_grants
from ..oidc.logout_propagation import queue_for_user
from ..persistence.models import (AuditEvent, Client, Consent, Consumable, Grant,
                                  MfaCredential, SsoSession, User, utcnow)
from ..persistence.models.relations import Relation
from ..services import audit, services
from ..web.auth import current_sso, login_required, recent_auth_required, sign_out
from . import bp
from .common import format_when, notify, page, ui_locale
from .forms import ButtonForm, DeleteAccountForm
from .applications import used_apps
from .relations import relation_as_dict, user_relations

RECENT_EVENTS = 50

EVENT_LABELS = {
    "login.success": _l("Connexion"),
    "login.failure": _l("Échec de connexion"),
    "login.reauthenticated": _l("Mot de passe confirmé pour une action sensible"),
    "login.reauth_failure": _l("Mot de passe incorrect lors d'une confirmation"),
    "logout": _l("Déconnexion"),
    "registration.success": _l("Création du compte"),
    "email.confirmed": _l("Adresse e-mail confirmée"),
    "password.changed": _l("Mot de passe modifié"),
    "password.change_failed": _l("Échec de modification du mot de passe (mot de passe "
                                 "actuel incorrect)"),
    "password.reset": _l("Mot de passe réinitialisé"),
    "recovery.code_sent": _l("Code de récupération envoyé"),
    "recovery.code_accepted": _l("Code de récupération accepté"),
    "recovery.code_rejected": _l("Code de récupération refusé"),
    "recovery.locked": _l("Récupération du compte bloquée"),
    "profile.updated": _l("Profil modifié"),
    "contact.code_sent": _l("Code de validation envoyé"),
    "contact.code_send_failed": _l("Échec d'envoi d'un code de validation"),
    "contact.code_rejected": _l("Code de validation refusé"),
    "contact.verified": _l("Contact vérifié et enregistré"),
    "contact.removed": _l("Contact supprimé"),
    "login_email.change_requested": _l("Changement d'adresse de connexion demandé"),
    "login_email.change_refused": _l("Changement d'adresse de connexion refusé"),
    "login_email.changed": _l("Adresse de connexion modifiée"),
    "preferences.updated": _l("Préférences modifiées"),
    "relation.created": _l("Relation ajoutée"),
    "relation.updated": _l("Relation modifiée"),
    "relation.deleted": _l("Relation supprimée"),
    "consent.granted": _l("Accès accordé à une application"),
    "consent.denied": _l("Accès refusé à une application"),
    "consent.revoked": _l("Accès retiré à une application"),
    "session.revoked": _l("Session fermée"),
    "account.exported": _l("Export de vos données"),
    "account.deleted": _l("Suppression du compte"),
    "mfa.enabled": _l("Double authentification activée"),
    "mfa.disabled": _l("Double authentification désactivée"),
    "mfa.challenge_failed": _l("Code de double authentification refusé"),
    "mfa.recovery_codes_renewed": _l("Nouveaux codes de secours"),
    "login.password_ok": _l("Mot de passe accepté, second facteur demandé"),
    "account.locked": _l("Compte bloqué temporairement après des échecs de connexion"),
    "recovery.send_failed": _l("Échec d'envoi d'un code de récupération"),
    "registration.existing_email": _l("Tentative de création d'un compte avec votre adresse"),
    "terms.accepted": _l("Conditions d'utilisation acceptées"),
    "token.issued": _l("Accès donné à une application (jeton émis)"),
    "token.revoked": _l("Accès d'une application révoqué"),
    "token.code_replayed": _l("Code d'autorisation réutilisé : accès de l'application révoqué"),
    "token.reused_within_grace": _l("Jeton de renouvellement présenté deux fois de suite "
                                    "(accepté : envois simultanés de l'application)"),
    "token.refresh_token_reused": _l("Jeton de renouvellement réutilisé : accès de "
                                     "l'application révoqué"),
    "admin.user_created": _l("Compte créé par l'administration"),
    "admin.user_disabled": _l("Compte désactivé par l'administration"),
    "admin.user_enabled": _l("Compte réactivé par l'administration"),
    "admin.user_password_reset": _l("Mot de passe réinitialisé par l'administration"),
    "admin.client_created": _l("Application enregistrée par l'administration"),
    "admin.client_updated": _l("Application modifiée par l'administration"),
    "admin.client_deleted": _l("Application supprimée par l'administration"),
    "admin.client_secret_rotated": _l("Secret d'une application renouvelé"),
    "admin.audit_purged": _l("Purge du journal"),
    "mfa.locked": _l("Double authentification bloquée après des codes incorrects"),
    "mfa.recovery_code_used": _l("Code de secours utilisé"),
    "mfa.address_confirmed": _l("Adresse de connexion confirmée par un code"),
    "mfa.reset_requested": _l("Désactivation de la double authentification demandée"),
    "mfa.reset_cancelled": _l("Demande de désactivation de la double authentification "
                              "annulée"),
    "mfa.reset": _l("Double authentification désactivée à votre demande"),
    "mfa.address_code_sent": _l("Code envoyé à l'adresse de connexion (double "
                                "authentification)"),
    "mfa.address_code_rejected": _l("Code envoyé à l'adresse de connexion refusé"),
    "recovery.refused": _l("Récupération du compte refusée : trop de messages envoyés"),
    "registration.disowned": _l("Compte annulé par le propriétaire de l'adresse"),
    "logout.backchannel_failed": _l("Échec de l'avis de déconnexion à une application "
                                    "(nouvel essai prévu)"),
    "logout.backchannel_abandoned": _l("Avis de déconnexion à une application abandonné "
                                       "après plusieurs échecs"),
    "hub.request_created": _l("Demande déposée par une application"),
    "hub.request_status": _l("Suivi d'une demande mis à jour par le service"),
    "hub.request_answered": _l("Message envoyé au service d'une demande"),
    "hub.document_read": _l("Document du porte-documents lu par une application"),
    "wallet.document_added": _l("Document ajouté au porte-documents"),
    "wallet.document_deleted": _l("Document supprimé du porte-documents"),
    "wallet.document_shared": _l("Document du porte-documents transmis à une application"),
    "subscriptions.updated": _l("Abonnements modifiés"),
    "subscriptions.unsubscribed": _l("Désabonnement d'un thème"),
    "admin.theme_saved": _l("Thème d'actualités enregistré par l'administration"),
    "admin.user_locked": _l("Compte verrouillé par l'administration"),
    "admin.user_unlocked": _l("Compte déverrouillé par l'administration"),
    "admin.password_reset_forced": _l("Nouveau mot de passe exigé par l'administration"),
    "admin.confirmation_resent": _l("E-mail de confirmation renvoyé par l'administration"),
    "admin.client_disabled": _l("Application désactivée par l'administration"),
    "admin.client_enabled": _l("Application réactivée par l'administration"),
    "admin.initial_access_token_created": _l("Jeton d'enregistrement d'applications créé "
                                             "par l'administration"),
    "admin.initial_access_token_revoked": _l("Jeton d'enregistrement d'applications révoqué "
                                             "par l'administration"),
}

_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("SamsungBrowser/", "Samsung Internet"), ("Chrome/", "Chrome"),
             ("CriOS/", "Chrome"), ("FxiOS/", "Firefox"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"),
            ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe_device(user_agent: str | None) -> str:
    """"Firefox sur Windows", from a User-Agent header; a plain label when unknown."""
    ua = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in ua), None)
    system = next((name for marker, name in _SYSTEMS if marker in ua), None)
    if browser and system:
        return _("%(browser)s sur %(system)s", browser=browser, system=system)
    if browser or system:
        return browser or system
    if re.search(r"curl|python|java|okhttp|wget", ua, re.I):
        return _("Programme ou script")
    return _("Appareil inconnu")


def event_label(type_: str) -> str:
    label = EVENT_LABELS.get(type_)
    return str(label) if label else _("Autre événement")


def session_handle(sso_id: str) -> str:
    """What pages show for a session: not its id, which signs a browser in."""
    key = services().secret_key.encode()
    return hmac.new(key, f"account-session:{sso_id}".encode(), hashlib.sha256).hexdigest()[:24]


# -- page ----------------------------------------------------------------------------------
@bp.route("/confidentialite")
@login_required
def privacy():
    svc = services()
    db = svc.db.session
    user = g.user
    locale = ui_locale()
    current = current_sso()
    sessions = [{
        "handle": session_handle(s.id), "current": current is not None and s.id == current.id,
        "device": describe_device(s.user_agent), "ip": s.ip_address or _("inconnue"),
        "started": format_when(s.auth_time, locale), "seen": format_when(s.last_seen_at, locale),
    } for s in sso_service.active_for_user(db, user.id)]
    events = [{
        "label": event_label(e.type), "failure": e.outcome != "success",
        "when": format_when(e.created_at, locale), "ip": e.ip_address or "",
        "device": describe_device(e.user_agent) if e.user_agent else "",
    } for e in db.scalars(select(AuditEvent).where(AuditEvent.user_id == user.id)
                          .order_by(AuditEvent.created_at.desc()).limit(RECENT_EVENTS))]
    return page("account/privacy.html", section="account.privacy", sessions=sessions,
                events=events, form=ButtonForm())


@bp.route("/confidentialite/sessions/<handle>/fermer", methods=["POST"])
@login_required
def end_session(handle: str):
    if not ButtonForm().validate_on_submit():
        abort(400)
    svc = services()
    db = svc.db.session
    target = next((s for s in sso_service.active_for_user(db, g.user.id)
                   if hmac.compare_digest(session_handle(s.id), handle)), None)
    if target is None:
        flash(_("Cette session est déjà fermée."), "info")
        return redirect(url_for("account.privacy"))
    current = current_sso()
    audit("session.revoked", user_id=g.user.id, which="current"
          if current is not None and target.id == current.id else "other")
    if current is not None and target.id == current.id:
        db.commit()
        sign_out("revoked_by_user")
        return redirect(url_for("home"))
    sso_service.end(db, target, "revoked_by_user")
    db.commit()
    flash(_("La session a été fermée : cet appareil devra se reconnecter."), "success")
    return redirect(url_for("account.privacy"))


@bp.route("/confidentialite/sessions/fermer-les-autres", methods=["POST"])
@login_required
def end_other_sessions():
    if not ButtonForm().validate_on_submit():
        abort(400)
    db = services().db.session
    current = current_sso()
    count = sso_service.end_all_for_user(db, g.user.id, "revoked_by_user",
                                         except_id=current.id if current else None)
    audit("session.revoked", user_id=g.user.id, which="others", count=count)
    db.commit()
    flash(_("Vos autres sessions ont été fermées (%(count)s).", count=count), "success")
    return redirect(url_for("account.privacy"))


# -- export ---------------------------------------------------------------------------------
def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_data(user: User) -> dict[str, Any]:
    """Everything held about ``user``: never a hash, a secret, a token or a session id."""
    db = services().db.session
    current = current_sso()
    clients = {c.client_id: c.name for c in db.scalars(select(Client).where(
        Client.client_id.in_(select(Grant.client_id).where(Grant.user_id == user.id).union(
            select(Consent.client_id).where(Consent.user_id == user.id)))))}
    last_used = {app.client.client_id: app.last_used for app in used_apps(db, user.id)}
    return {
        "generated_at": _iso(utcnow()),
        "service": services().settings.service_name,
        "profile": {
            "id": user.id, "email": user.email, "email_verified": user.email_verified,
            "given_name": user.given_name, "family_name": user.family_name,
            "birthdate": _iso(user.birthdate),
            "phone_number": user.phone_number,
            "phone_number_verified": user.phone_number_verified,
            "contact_email": user.contact_email,
            "address": {"street_address": user.street_address,
                        "postal_code": user.postal_code, "locality": user.locality,
                        "country": user.country},
            "locale": user.locale, "preferred_contact": user.preferred_contact,
            "notifications_email": user.notifications_email,
            "population": user.population, "terms_version": user.terms_version,
            "terms_accepted_at": _iso(user.terms_accepted_at),
            "password_changed_at": _iso(user.password_changed_at),
            "second_factor_enabled": user.mfa_enabled,
            "created_at": _iso(user.created_at), "updated_at": _iso(user.updated_at),
        },
        "relations": [{**relation_as_dict(r), "created_at": _iso(r.created_at),
                       "updated_at": _iso(r.updated_at)}
                      for r in user_relations(db, user.id)],
        # The last use Applications shows (the latest consent or authorization).
        "consents": [{"client_id": c.client_id, "application": clients.get(c.client_id),
                      "scope": c.scope, "granted_at": _iso(c.granted_at),
                      "last_used_at": _iso(last_used.get(c.client_id) or c.last_used_at)}
                     for c in db.scalars(select(Consent).where(Consent.user_id == user.id))],
        "authorizations": [{"client_id": gr.client_id, "application": clients.get(gr.client_id),
                            "scope": gr.scope, "created_at": _iso(gr.created_at),
                            "revoked_at": _iso(gr.revoked_at),
                            "revoked_reason": gr.revoked_reason}
                           for gr in db.scalars(select(Grant).where(Grant.user_id == user.id)
                                                .order_by(Grant.created_at))],
        "sessions": [{"current": current is not None and s.id == current.id,
                      "device": describe_device(s.user_agent), "user_agent": s.user_agent,
                      "ip_address": s.ip_address, "authenticated_at": _iso(s.auth_time),
                      "last_seen_at": _iso(s.last_seen_at), "expires_at": _iso(s.expires_at),
                      "ended_at": _iso(s.ended_at), "ended_reason": s.ended_reason,
                      "methods": s.amr, "level": s.acr}
                     for s in db.scalars(select(SsoSession).where(SsoSession.user_id == user.id)
                                         .order_by(SsoSession.created_at))],
        "security_events": [{"created_at": _iso(e.created_at), "type": e.type,
                             "label": event_label(e.type), "outcome": e.outcome,
                             "client_id": e.client_id, "ip_address": e.ip_address,
                             "user_agent": e.user_agent, "details": e.details}
                            for e in db.scalars(select(AuditEvent).where(
                                AuditEvent.user_id == user.id).order_by(AuditEvent.created_at))],
        # Requests, notifications, wallet documents (described), subscriptions.
        **hub_lifecycle.export(db, user),
    }


@bp.route("/confidentialite/export")
@recent_auth_required
def export():
    user = g.user
    data = export_data(user)
    audit("account.exported", user_id=user.id)
    services().db.session.commit()
    body = json.dumps(data, ensure_ascii=False, indent=2)
    filename = f"mes-donnees-{utcnow():%Y-%m-%d}.json"
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})


# -- deletion -------------------------------------------------------------------------------
def delete_account(user: User) -> None:
    """Delete the account and all its data, revoke every token, end every session.
    The audit trail keeps its events (no foreign key) for the retention period. An
    unfinished flow of another browser (a recovery, say) is left to expire in the
    key-value store (30 minutes at most): each of its steps reads the account again, and
    finds none."""
    db = services().db.session
    uid = user.id
    # First, while the grants still say which apps knew the user (they are told).
    files = hub_lifecycle.forget_user(db, wallet_store(services()), uid,
                                      pairwise_salt(services()))
    revoke_user_grants(db, uid, "account_deleted")
    sso_service.end_all_for_user(db, uid, "account_deleted")
    # The sessions go with the account: their clients are told now (back-channel logout).
    queue_for_user(db, services(), uid, "account_deleted")
    grant_ids = select(Grant.id).where(Grant.user_id == uid)
    for statement in (
            delete(Consumable).where(or_(Consumable.user_id == uid,
                                         Consumable.grant_id.in_(grant_ids))),
            delete(Relation).where(Relation.user_id == uid),
            delete(Consent).where(Consent.user_id == uid),
            delete(Grant).where(Grant.user_id == uid),
            delete(SsoSession).where(SsoSession.user_id == uid),
            delete(MfaCredential).where(MfaCredential.user_id == uid)):
        db.execute(statement.execution_options(synchronize_session=False))
    db.expire(user, ["mfa_credentials"])
    db.delete(user)
    audit("account.deleted", user_id=uid)
    db.commit()
    hub_lifecycle.delete_files(wallet_store(services()), files)


@bp.route("/supprimer", methods=["GET", "POST"])
@recent_auth_required
def close_account():
    user = g.user
    form = DeleteAccountForm()
    if request.method == "POST" and form.validate_on_submit():
        when = format_when(utcnow(), user.locale)
        delete_account(user)
        notify(user, "account_deleted", when=when)
        logout_user()
        session.destroy()
        return page("account/deleted.html", section="account.privacy")
    status = 400 if request.method == "POST" else 200
    return page("account/delete.html", status, section="account.privacy", form=form)
