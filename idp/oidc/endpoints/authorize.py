"""Authorization endpoint (OIDC Core §3.1.2): validation, login and consent
interactions, code issuance.

An interaction that needs the user (login, consent) is a ``Flow`` of type
``authorize`` holding the request parameters; the browser comes back to
``/authorize/resume/<flow id>`` and the request is validated again from what was stored.
The protocol knows the login only by its URL: it sends the browser to ``/login`` with
the resume as ``return_to``, an ordinary redirect.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Response, g, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import get_locale, refresh
from flask_login import current_user
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from ...persistence.flows import Flow, FlowError, create_flow, delete_flow, load_flow
from ...persistence.models import Client, Consent, utcnow
from ...services import audit, services
from .. import claims as claims_mod
from ..client_errors import record_client_error

PROMPT_VALUES = {"none", "login", "consent", "select_account"}
# Authentication context classes: eidas1 = one factor, eidas2 = two factors.
ACR_ORDER = ["eidas1", "eidas2"]
AUTHORIZE_FLOW_TTL = 30 * 60


class StoredAuthorizationRequest(OAuth2Request):
    """An authorization request rebuilt from the parameters saved in its flow."""

    def __init__(self, params: dict[str, str], uri: str) -> None:
        super().__init__("GET", uri, headers={})
        self.payload = BasicOAuth2Payload(params)
        self._args = MultiDict(params)

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return MultiDict()


class AuthorizeFailure(Exception):
    def __init__(self, error: str, description: str = "") -> None:
        self.error = error
        self.description = description


@dataclass
class Interaction:
    """What one pass over an authorization request decided."""

    params: dict[str, str]
    client: Client
    redirect_uri: str
    scope: str
    prompt: set[str] = field(default_factory=set)
    max_age: int | None = None
    claims: dict | None = None
    # Claims asked one by one beyond the scope: released once consented to.
    individual_claims: list[str] = field(default_factory=list)
    acr_values: list[str] = field(default_factory=list)
    hint_sub: str | None = None


def _server():
    return services().oauth


def _issuer() -> str:
    return services().settings.issuer


RESPONSE_MODES = ("query", "form_post")


def _redirect_with(redirect_uri: str, params: dict[str, str | None],
                   response_mode: str | None = None) -> object:
    """The authorization response, with ``iss`` (RFC 9207, on success and on error): in
    the redirect URI's query, or posted to it (OAuth 2.0 Form Post Response Mode)."""
    clean = [(k, v) for k, v in params.items() if v is not None]
    clean.append(("iss", _issuer()))
    if response_mode == "form_post":
        response = make_response(render_template("oidc/form_post.html", action=redirect_uri,
                                                 params=clean))
    else:  # no body: the code goes in the Location header only
        response = Response(status=302,
                            headers={"Location": add_params_to_uri(redirect_uri, clean)})
    response.headers["Cache-Control"] = "no-store"
    return response


def _added_parameters(location: str, redirect_uri: str) -> dict[str, str]:
    """What Authlib added to ``redirect_uri`` in its redirect (the code and the state)."""
    own = set(parse_qsl(urlsplit(redirect_uri).query, keep_blank_values=True))
    return {k: v for k, v in parse_qsl(urlsplit(location).query, keep_blank_values=True)
            if (k, v) not in own}


def _error_page(error: str, description: str, status: int = 400):
    return render_template("oidc/authorize_error.html", error=error,
                           description=description), status


# The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636, OIDC Core
# §3.1.2.1, §5.5) and the longest value kept of each; any other is dropped. The request
# waits in the store while the user signs in: unbounded, anyone could fill the store.
PARAMETER_LIMITS = {
    "response_type": 64, "client_id": 64, "redirect_uri": 2000, "scope": 1000,
    "state": 1000, "nonce": 500, "code_challenge": 128, "code_challenge_method": 16,
    "prompt": 64, "max_age": 16, "login_hint": 320, "id_token_hint": 4000,
    "ui_locales": 100, "acr_values": 200, "claims": 2000, "response_mode": 32,
    "display": 16, "request": 8000, "request_uri": 2000,
}
# All of them together (request objects aside: refused before anything is stored).
MAX_PARAMETERS_SIZE = 8000
# The largest authorization request body read (a form POST, OIDC Core §3.1.2.1).
MAX_BODY_BYTES = 32 * 1024


def authorization_parameters() -> dict[str, str]:
    """The request's known parameters, each once and within its limit; raises
    :class:`AuthorizeFailure` (``invalid_request``) otherwise."""
    params: dict[str, str] = {}
    for name, limit in PARAMETER_LIMITS.items():
        values = request.values.getlist(name)
        if not values:
            continue
        if len(values) > 1:
            raise AuthorizeFailure("invalid_request", f"The parameter {name} is repeated.")
        if len(values[0]) > limit:
            raise AuthorizeFailure("invalid_request", f"The parameter {name} is too long.")
        params[name] = values[0]
    stored = sum(len(v) for k, v in params.items() if k not in ("request", "request_uri"))
    if stored > MAX_PARAMETERS_SIZE:
        raise AuthorizeFailure("invalid_request", "The request is too large.")
    return params


def _validate(oauth_request: OAuth2Request) -> tuple[object, Interaction]:
    """Authlib validates client, redirect URI, response type, scope and PKCE; then the
    OIDC parameters Authlib leaves to us. Raises OAuth2Error or AuthorizeFailure."""
    grant = _server().get_consent_grant(request=oauth_request, end_user=None)
    params = dict(oauth_request.payload.data.items())
    client: Client = grant.request.client
    interaction = Interaction(params=params, client=client, redirect_uri=grant.redirect_uri,
                              scope=grant.request.scope or "")
    if "request" in params:
        raise AuthorizeFailure("request_not_supported", "Request objects are not supported.")
    if "request_uri" in params:
        raise AuthorizeFailure("request_uri_not_supported", "request_uri is not supported.")
    if params.get("response_mode") not in (None, "", *RESPONSE_MODES):
        raise AuthorizeFailure("invalid_request", "Unsupported response_mode.")
    challenge = params.get("code_challenge")
    if challenge and params.get("code_challenge_method") != "S256":
        raise AuthorizeFailure("invalid_request", "code_challenge_method must be S256.")
    if not challenge and (client.is_public or client.require_pkce):
        raise AuthorizeFailure("invalid_request", "PKCE (S256) is required for this client.")
    prompt = set((params.get("prompt") or "").split())
    if prompt - PROMPT_VALUES:
        raise AuthorizeFailure("invalid_request", "Unknown prompt value.")
    if "none" in prompt and len(prompt) > 1:
        raise AuthorizeFailure("invalid_request", "prompt=none cannot be combined.")
    interaction.prompt = prompt
    if params.get("max_age") not in (None, ""):
        try:
            interaction.max_age = int(params["max_age"])
        except ValueError:
            raise AuthorizeFailure("invalid_request", "max_age must be an integer.") from None
        if interaction.max_age < 0:
            raise AuthorizeFailure("invalid_request", "max_age must not be negative.")
    try:
        interaction.claims = claims_mod.parse_claims_request(params.get("claims"))
    except claims_mod.ClaimsRequestError as exc:
        raise AuthorizeFailure("invalid_request", str(exc)) from None
    interaction.individual_claims = claims_mod.individual_claims(
        interaction.claims, interaction.scope, client.scope)
    interaction.acr_values = (params.get("acr_values") or "").split()
    if interaction.claims:
        acr_claim = (interaction.claims.get("id_token") or {}).get("acr")
        if isinstance(acr_claim, dict):
            wanted = acr_claim.get("values") or ([acr_claim["value"]]
                                                  if acr_claim.get("value") else [])
            interaction.acr_values = [*interaction.acr_values, *wanted]
    hint = params.get("id_token_hint")
    if hint:
        hint_claims = services().tokens.decode_id_token_hint(hint)
        aud = hint_claims.get("aud") if hint_claims else None
        audiences = aud if isinstance(aud, list) else [aud]
        if not hint_claims or client.client_id not in audiences:
            raise AuthorizeFailure("invalid_request", "Invalid id_token_hint.")
        interaction.hint_sub = hint_claims["sub"]
    return grant, interaction


def _required_acr(interaction: Interaction) -> str | None:
    known = [a for a in interaction.acr_values if a in ACR_ORDER]
    return min(known, key=ACR_ORDER.index) if known else None


def _login_reason(interaction: Interaction, flow: Flow | None) -> str | None:
    """Why the user must (re)authenticate now, or None."""
    if not current_user.is_authenticated:
        return "no_session"
    sso = current_user.sso
    fresh = flow is not None and sso.auth_time >= flow.created_at
    if fresh:
        return None
    if "login" in interaction.prompt:
        return "prompt_login"
    if interaction.max_age is not None and \
            time.time() - sso.auth_time.timestamp() > interaction.max_age:
        return "max_age"
    if interaction.hint_sub is not None:
        if claims_mod.subject_for(current_user.user.id, interaction.client,
                                  services().pairwise_salt) != interaction.hint_sub:
            return "hint_mismatch"
    wanted = _required_acr(interaction)
    if wanted and ACR_ORDER.index(sso.acr) < ACR_ORDER.index(wanted):
        return "step_up"
    return None


def _consent_needed(interaction: Interaction, user_id: str) -> bool:
    if not interaction.client.require_consent:
        return False
    if "consent" in interaction.prompt:
        return True
    consent = services().db.session.scalar(select(Consent).where(
        Consent.user_id == user_id, Consent.client_id == interaction.client.client_id))
    wanted = set(interaction.scope.split()) - {"openid"}
    return consent is None or not wanted <= set(consent.scope.split()) \
        or not set(interaction.individual_claims) <= set(consent.claims or ())


def _remember_consent(interaction: Interaction, user_id: str) -> None:
    db = services().db.session
    consent = db.scalar(select(Consent).where(
        Consent.user_id == user_id, Consent.client_id == interaction.client.client_id))
    scopes = set(interaction.scope.split())
    claims = set(interaction.individual_claims)
    if consent is None:
        db.add(Consent(user_id=user_id, client_id=interaction.client.client_id,
                       scope=" ".join(sorted(scopes)), claims=sorted(claims),
                       granted_at=utcnow()))
    else:
        consent.scope = " ".join(sorted(scopes | set(consent.scope.split())))
        consent.claims = sorted(claims | set(consent.claims or ()))
        consent.granted_at = utcnow()
    audit("consent.granted", user_id=user_id, client_id=interaction.client.client_id,
          scope=interaction.scope, claims=sorted(claims))


def _interaction_flow(interaction: Interaction, flow: Flow | None, state: str) -> Flow:
    if flow is None:
        flow = create_flow(services().db.session, "authorize", state=state,
                           browser=session.browser_id, data={"params": interaction.params},
                           ttl=AUTHORIZE_FLOW_TTL)
    else:
        flow.state = state
    return flow


def _issue_code(grant, oauth_request: OAuth2Request, interaction: Interaction):
    sso = current_user.sso
    grant.request.user = current_user.user
    grant.request.auth_context = {
        "auth_time": int(sso.auth_time.timestamp()), "sso": sso, "claims": interaction.claims,
        # Consented to (or a first-party client: no consent asked).
        "granted_claims": interaction.individual_claims,
    }
    response = _server().create_authorization_response(
        request=oauth_request, grant_user=current_user.user, grant=grant)
    services().db.session.commit()
    location = response.headers.get("Location")
    if not location:
        return response
    return _redirect_with(interaction.redirect_uri,
                          _added_parameters(location, interaction.redirect_uri),
                          interaction.params.get("response_mode"))


def _login_redirect(interaction: Interaction, flow: Flow):
    """To the login page, which comes back to this request's resume once signed in."""
    services().db.session.commit()
    return redirect(url_for(
        "login.start", return_to=url_for("oidc.authorize_resume", flow_id=flow.id),
        client_id=interaction.client.client_id, acr=_required_acr(interaction),
        login_hint=interaction.params.get("login_hint"),
        force=1 if current_user.is_authenticated else None))


def handle(oauth_request: OAuth2Request, flow: Flow | None = None, *,
           decision: str | None = None):
    """Answer an authorization request, new or resumed (``flow``). ``decision``: the
    user's answer on the consent screen."""
    mode = oauth_request.payload.data.get("response_mode")
    mode = mode if mode in RESPONSE_MODES else None
    try:
        grant, interaction = _validate(oauth_request)
    except OAuth2Error as error:
        _audit_refusal(oauth_request, error.error, error.description)
        if not error.redirect_uri:
            return _error_page(error.error, error.description or "")
        return _redirect_with(error.redirect_uri, {
            "error": error.error, "error_description": error.description or None,
            "state": oauth_request.payload.state}, mode)
    except AuthorizeFailure as failure:
        _audit_refusal(oauth_request, failure.error, failure.description)
        return _redirect_with(grant_redirect(oauth_request), {
            "error": failure.error, "error_description": failure.description,
            "state": oauth_request.payload.state}, mode)

    state = interaction.params.get("state")
    ui_locales = interaction.params.get("ui_locales")
    if ui_locales:
        g.ui_locales = ui_locales.split()
        refresh()
        get_locale()  # chosen again with them, and remembered for the pages that follow

    reason = _login_reason(interaction, flow)
    if reason is not None:
        if "none" in interaction.prompt:
            error = "interaction_required" if reason == "step_up" else "login_required"
            return _redirect_with(interaction.redirect_uri, {"error": error, "state": state},
                                  mode)
        return _login_redirect(interaction, _interaction_flow(interaction, flow, "login"))

    user_id = current_user.user.id
    if _consent_needed(interaction, user_id):
        if "none" in interaction.prompt:
            return _redirect_with(interaction.redirect_uri,
                                  {"error": "consent_required", "state": state}, mode)
        if decision is None or (flow is not None and flow.state != "consent"):
            flow = _interaction_flow(interaction, flow, "consent")
            services().db.session.commit()
            return render_consent(interaction, flow)
        if decision != "allow":
            audit("consent.denied", user_id=user_id, client_id=interaction.client.client_id)
            delete_flow(services().db.session, flow)
            services().db.session.commit()
            return _redirect_with(interaction.redirect_uri,
                                  {"error": "access_denied", "state": state}, mode)
        _remember_consent(interaction, user_id)
    if flow is not None:
        # Deleted in the transaction that saves the code (save_authorization_code).
        delete_flow(services().db.session, flow)
    return _issue_code(grant, oauth_request, interaction)


def _audit_refusal(oauth_request: OAuth2Request, error: str, description: str | None) -> None:
    """A refused authorization request, in its client's audit trail (the console's
    recent errors): a wrong redirect URI, a missing PKCE challenge..."""
    client_id = oauth_request.payload.client_id
    if client_id:
        record_client_error(services(), "authorize", error=error, description=description,
                            client_id=client_id, redirect_uri=oauth_request.payload.redirect_uri)


def grant_redirect(oauth_request: OAuth2Request) -> str:
    # Only reached after Authlib validated client and redirect_uri.
    client = _server().query_client(oauth_request.payload.client_id)
    return oauth_request.payload.redirect_uri or client.get_default_redirect_uri()


def render_consent(interaction: Interaction, flow: Flow):
    scopes = [s for s in interaction.scope.split() if s != "openid"]
    items = [claims_mod.SCOPE_LABELS_FR.get(s, s) for s in scopes]
    items += [claims_mod.capitalized(claims_mod.CLAIM_LABELS_FR.get(c, c))
              for c in interaction.individual_claims]
    return render_template("oidc/consent.html", client=interaction.client, items=items,
                           flow=flow, user=current_user.user), 200, {"Cache-Control": "no-store"}


def authorize():
    try:
        params = authorization_parameters()
    except AuthorizeFailure as failure:
        return _error_page(failure.error, failure.description)
    return handle(StoredAuthorizationRequest(params, url_for("oidc.authorize", _external=True)))


def authorize_resume(flow_id: str):
    decision = request.form.get("decision") if request.method == "POST" else None
    return _resume(flow_id, decision=decision)


def _resume(flow_id: str, *, decision: str | None = None):
    try:
        flow = load_flow(services().db.session, flow_id, "authorize", session.browser_id)
    except FlowError:
        return _error_page("invalid_request",
                           _("Cette demande de connexion a expiré. Retournez sur le service "
                             "que vous utilisiez et recommencez."))
    params = flow.data.get("params") or {}
    stored = StoredAuthorizationRequest(params, url_for("oidc.authorize", _external=True))
    return handle(stored, flow, decision=decision)
