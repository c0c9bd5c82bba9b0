"""RP-Initiated Logout 1.0: end the SSO session, then go back to the relying party's
registered post_logout_redirect_uri (with its ``state``) or show a signed-out page."""

from __future__ import annotations

from urllib.parse import urlsplit

from authlib.common.urls import add_params_to_uri
from flask import make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from ...identity.grants import revoke_grant
from ...persistence.models import Client, Grant
from ...security.headers import security_headers
from ...services import audit, services
from ...web.auth import sign_out
from .. import claims as claims_mod


def _error(description: str):
    return render_template("oidc/authorize_error.html", error="invalid_request",
                           description=description), 400


def _frontchannel_uris() -> list[str]:
    """Front-Channel Logout 1.0: the logout URI of each client of the session, with the
    issuer and the session id (§2)."""
    svc = services()
    sso = current_user.sso
    uris = []
    for client_id in sso.clients:
        client = svc.clients.get(svc.db.session, client_id)
        if client is not None and client.frontchannel_logout_uri:
            uris.append(add_params_to_uri(client.frontchannel_logout_uri,
                                          [("iss", svc.settings.issuer), ("sid", sso.id)]))
    return uris


def _with_frontchannel(uris: list[str], answer):
    """The answer, after a page that loads each client's front-channel logout URI in an
    invisible frame and moves on by itself (no script: a refresh after two seconds)."""
    if not uris:
        return answer
    target = answer.headers["Location"] if getattr(answer, "status_code", 200) in (302, 303) \
        else url_for("oidc.logged_out")
    origins = " ".join(sorted({f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in uris}))
    response = make_response(render_template("oidc/frontchannel_logout.html", uris=uris,
                                             target=target))
    policy = dict(security_headers(services().settings.is_https))["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = f"{policy}; frame-src {origins}"
    response.headers["Refresh"] = f"2; url={target}"
    return response


def _end_session() -> None:
    svc = services()
    sso = current_user.sso
    user_id = current_user.user.id
    # Tokens minted for this browser session end with it; offline grants survive.
    grants = svc.db.session.query(Grant).filter(Grant.sso_session_id == sso.id,
                                                Grant.revoked_at.is_(None)).all()
    for grant in grants:
        if "offline_access" not in grant.scope.split():
            revoke_grant(svc.db.session, grant.id, "logout")
    audit("logout", user_id=user_id)
    sign_out("logout")


def logged_out():
    return render_template("oidc/logged_out.html", client=None)


def logout():
    svc = services()
    params = request.values
    hint = params.get("id_token_hint")
    client_id = params.get("client_id")
    hint_claims = None
    if hint:
        hint_claims = svc.tokens.decode_id_token_hint(hint)
        if hint_claims is None:
            return _error(_("Le jeton de déconnexion (id_token_hint) n'est pas valide."))
        aud = hint_claims["aud"]
        aud_client = aud if isinstance(aud, str) else (aud[0] if len(aud) == 1 else None)
        if client_id and aud_client != client_id:
            return _error(_("client_id ne correspond pas au jeton fourni."))
        client_id = aud_client
    client = svc.db.session.get(Client, client_id) if isinstance(client_id, str) else None
    if client_id and client is None:
        return _error(_("Application inconnue."))
    post_logout = params.get("post_logout_redirect_uri")
    if post_logout and (client is None or post_logout not in client.post_logout_redirect_uris):
        return _error(_("L'adresse de retour après déconnexion n'est pas enregistrée "
                        "pour cette application."))

    def finish():
        if post_logout:
            target = post_logout
            if params.get("state"):
                target = add_params_to_uri(target, [("state", params["state"])])
            return redirect(target)
        return render_template("oidc/logged_out.html", client=client)

    if not current_user.is_authenticated:
        return finish()
    hint_matches = bool(hint_claims and client and (
        hint_claims.get("sid") == current_user.sso.id
        or hint_claims["sub"] == claims_mod.subject_for(current_user.user.id, client,
                                                         svc.pairwise_salt)))
    confirmed = False
    if request.method == "POST" and request.form.get("confirm") == "yes":
        # The endpoint is CSRF-exempt for relying parties' POSTs; our own confirmation
        # form carries a token, checked here.
        try:
            validate_csrf(request.form.get("csrf_token"))
            confirmed = True
        except ValidationError:
            confirmed = False
    if hint_matches or confirmed:
        uris = _frontchannel_uris()
        _end_session()
        return _with_frontchannel(uris, finish())
    # Without a matching hint, a cross-site link must not sign the user out silently.
    return render_template("oidc/logout_confirm.html", client=client,
                           params={k: v for k, v in params.items() if k != "confirm"})
