"""End to end against real server processes, with real client libraries.

1. The provider alone, driven by Authlib's requests client (code + PKCE S256, state,
   nonce, client_secret_basic), the ID token checked with joserfc against the JWKS
   from discovery, userinfo, refresh token rotation with reuse detection, and
   RP-initiated logout.
2. The sample démarche app (``clients/demarches``) as a second process, registered
   with the ``idp`` CLI, driven like a browser from its home page to a prefilled form
   and back out.
"""

from __future__ import annotations

import html
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.e2e.conftest import HTTP_TIMEOUT, WebBrowser, free_port, idp_cli_json, form_with

pytestmark = pytest.mark.live_server

SCOPE = "openid profile email phone address offline_access"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def discover(issuer: str) -> dict:
    metadata = requests.get(issuer + "/.well-known/openid-configuration",
                            timeout=HTTP_TIMEOUT).json()
    assert metadata["issuer"] == issuer
    return metadata


def validate_id_token(raw: str, metadata: dict, client_id: str, nonce: str,
                      access_token: str) -> dict:
    """OIDC Core §3.1.3.7, with joserfc and the provider's published keys."""
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"],
                                              timeout=HTTP_TIMEOUT).json())
    token = jwt.decode(raw, keys, algorithms=metadata["id_token_signing_alg_values_supported"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
        at_hash={"essential": True,
                 "value": create_half_hash(access_token, token.header["alg"]).decode()},
    ).validate(token.claims)
    assert token.claims["exp"] > time.time() > token.claims["iat"] - 60
    return token.claims


def test_code_flow_with_authlib_client(start_provider, live, client_factory, user_factory):
    user = user_factory(email="camille.martin@example.org", given_name="Camille",
                        family_name="Martin", phone_number="+33612345678",
                        street_address="12 rue de la République", postal_code="69002",
                        locality="Lyon", country="France")
    redirect_uri = "http://127.0.0.1:9/callback"  # never fetched: the test reads the URL
    post_logout = "http://127.0.0.1:9/au-revoir"
    rp = client_factory(redirect_uri=redirect_uri, post_logout_redirect_uris=[post_logout],
                        require_consent=True)
    start_provider()
    metadata = discover(live.issuer)
    assert metadata["authorization_response_iss_parameter_supported"] is True

    client = OAuth2Session(rp.client_id, rp.client_secret, scope=SCOPE,
                           redirect_uri=redirect_uri, code_challenge_method="S256",
                           token_endpoint_auth_method="client_secret_basic")
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"],
                                                 code_verifier=verifier, nonce=nonce)
    assert "code_challenge=" in url and "code_challenge_method=S256" in url

    browser = WebBrowser()
    callback = browser.drive(browser.get(url), email=user.email, stop_at=redirect_uri)
    assert any("/login" in u for u in browser.visited), "the login page was not shown"
    assert any("/authorize/resume/" in u for u in browser.visited)
    params = query(callback)
    assert params["state"] == state
    assert params["iss"] == live.issuer  # RFC 9207

    token = client.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                               state=state, code_verifier=verifier)
    assert token["token_type"].lower() == "bearer" and token["refresh_token"]
    assert set(token["scope"].split()) == set(SCOPE.split())
    claims = validate_id_token(token["id_token"], metadata, rp.client_id, nonce,
                               token["access_token"])
    assert claims["sub"] == user.id and claims["sid"]

    info = client.get(metadata["userinfo_endpoint"], timeout=HTTP_TIMEOUT)
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["sub"] == claims["sub"]
    assert body["given_name"] == "Camille" and body["family_name"] == "Martin"
    assert body["email"] == user.email and body["email_verified"] is True
    assert body["phone_number"] == "+33612345678"
    assert body["address"]["postal_code"] == "69002"
    assert body["address"]["locality"] == "Lyon"

    # Refresh with rotation: a new refresh token; the old one is then refused, and its
    # reuse ends the family (the new one too).
    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] and refreshed["refresh_token"] != first_refresh
    assert client.get(metadata["userinfo_endpoint"],
                      timeout=HTTP_TIMEOUT).json()["sub"] == user.id
    with pytest.raises(OAuthError) as reused:
        client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    assert reused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as family:
        client.refresh_token(metadata["token_endpoint"],
                             refresh_token=refreshed["refresh_token"])
    assert family.value.error == "invalid_grant"

    # RP-initiated logout: back to the registered URI with our state, session over.
    logout_state = generate_token(16)
    response = browser.get(metadata["end_session_endpoint"], params={
        "id_token_hint": token["id_token"], "post_logout_redirect_uri": post_logout,
        "state": logout_state})
    assert response.status_code in (302, 303), response.text[:500]
    location = response.headers["Location"]
    assert location.startswith(post_logout)
    assert query(location)["state"] == logout_state
    again, _ = client.create_authorization_url(metadata["authorization_endpoint"],
                                               code_verifier=verifier, nonce=nonce)
    after = browser.get(again)  # to the login page: the session is over
    assert after.status_code == 302 and "/login?" in after.headers["Location"]
    login = browser.get(live.issuer + after.headers["Location"])
    assert login.status_code == 200 and 'name="password"' in login.text


def test_code_flow_rejects_bad_client_secret(start_provider, live, client_factory,
                                             user_factory):
    user = user_factory()
    redirect_uri = "http://127.0.0.1:9/callback"
    rp = client_factory(redirect_uri=redirect_uri, require_consent=False)
    start_provider()
    metadata = discover(live.issuer)
    client = OAuth2Session(rp.client_id, "not-the-secret", scope="openid",
                           redirect_uri=redirect_uri, code_challenge_method="S256")
    verifier = generate_token(48)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"],
                                                 code_verifier=verifier, nonce="n-0S6")
    browser = WebBrowser()
    callback = browser.drive(browser.get(url), email=user.email, stop_at=redirect_uri)
    with pytest.raises(OAuthError) as error:
        client.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                           state=state, code_verifier=verifier)
    assert error.value.error == "invalid_client"


def _sample_app(start_provider, start_sample_app, live):
    """Provider + sample app, the app registered through the ``idp`` CLI."""
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}"
    registered = idp_cli_json(
        live.env, "clients", "create", "--name", "Demande d'aide au logement",
        "--client-id", "demarches-e2e", "--redirect-uri", f"{app_url}/callback",
        "--post-logout-redirect-uri", f"{app_url}/",
        "--backchannel-logout-uri", f"{app_url}/backchannel-logout", "--json")
    assert registered["client_id"] == "demarches-e2e" and registered["require_consent"]
    start_provider()
    start_sample_app(live.issuer, registered["client_id"], registered["client_secret"],
                     app_port)
    return app_url


def test_sample_app_signs_in_prefills_and_signs_out(start_provider, start_sample_app, live,
                                                     user_factory):
    user = user_factory(email="camille.martin@example.org", given_name="Camille",
                        family_name="Martin", phone_number="+33612345678",
                        street_address="12 rue de la République", postal_code="69002",
                        locality="Lyon", country="France")
    app_url = _sample_app(start_provider, start_sample_app, live)
    browser = WebBrowser()

    home = browser.get(app_url + "/")
    assert home.status_code == 200 and 'lang="fr"' in home.text
    assert "Se connecter avec Compte usager" in home.text
    start = browser.get(app_url + "/connexion")
    assert start.is_redirect
    assert start.headers["Location"].startswith(live.issuer + "/authorize?")
    assert "code_challenge_method=S256" in start.headers["Location"]

    home = browser.drive(start, email=user.email)
    assert any(u.startswith(app_url + "/callback?") for u in browser.visited)
    assert any("/authorize/resume/" in u for u in browser.visited), "no consent screen"
    assert home.url == app_url + "/", (home.status_code, home.text[:800])
    started = browser.submit(browser.get(app_url + "/demarches/aide-logement"), "start")
    page = browser.get(app_url + started.headers["Location"])
    assert page.status_code == 200, page.text[:800]
    form = form_with(page.text, "nom")
    assert form["fields"]["prenom"] == "Camille"
    assert form["fields"]["nom"] == "Martin"
    assert form["fields"]["email"] == user.email
    assert form["fields"]["telephone"] == "06 12 34 56 78"
    assert form["fields"]["adresse"] == "12 rue de la République"
    assert form["fields"]["code_postal"] == "69002" and form["fields"]["commune"] == "Lyon"

    # Bad input re-renders with a French message; a draft keeps what was typed.
    invalid = browser.submit(page, "nom", {"code_postal": "6900", "situation": "locataire",
                                           "personnes": "2", "loyer": "540"},
                             button=("action", "submit"))
    assert invalid.status_code == 400 and "Le code postal compte 5 chiffres" in invalid.text
    draft = browser.submit(page, "nom", {"situation": "locataire", "personnes": "2",
                                         "loyer": "540"}, button=("action", "save"))
    assert draft.is_redirect
    resumed = browser.get(app_url + draft.headers["Location"])
    assert form_with(resumed.text, "nom")["fields"]["personnes"] == "2"
    missing = browser.submit(resumed, "nom", button=("action", "submit"))
    assert missing.status_code == 400 and "Joignez « Justificatif de domicile" in \
        html.unescape(missing.text)

    # Refresh (rotation) through the app, then logout through the provider, back to the
    # app with the state it checks.
    csrf = form["fields"]["csrf_token"]
    update = browser.post(app_url + "/actualiser", data={"csrf_token": csrf})
    assert update.is_redirect and update.headers["Location"] == "/"
    refreshed = browser.get(app_url + "/").text
    assert "ont été mises à jour" in refreshed, refreshed[refreshed.find("notice"):][:300]
    logout = browser.post(app_url + "/deconnexion", data={"csrf_token": csrf})
    assert logout.is_redirect
    end_session = logout.headers["Location"]
    assert end_session.startswith(live.issuer + "/logout?")
    assert {"id_token_hint", "post_logout_redirect_uri", "state"} <= set(query(end_session))
    back = browser.get(end_session)
    assert back.is_redirect and back.headers["Location"].startswith(app_url + "/?state=")
    landing = browser.drive(browser.get(back.headers["Location"]), email=user.email)
    assert landing.url == app_url + "/" and "Vous êtes déconnecté" in landing.text
    assert browser.get(app_url + started.headers["Location"]).is_redirect  # signed out
    # ... and of the provider: signing in again asks for the password.
    again = browser.get(app_url + "/connexion")
    to_login = browser.get(again.headers["Location"])
    assert to_login.status_code == 302 and "/login?" in to_login.headers["Location"]
    login = browser.get(live.issuer + to_login.headers["Location"])
    assert login.status_code == 200 and 'name="password"' in login.text


def test_sample_app_explains_refused_consent(start_provider, start_sample_app, live,
                                             user_factory):
    user = user_factory()
    app_url = _sample_app(start_provider, start_sample_app, live)
    browser = WebBrowser()
    page = browser.drive(browser.get(app_url + "/connexion"), email=user.email,
                         consent=False)
    assert page.url.startswith(app_url + "/callback?")
    assert "error=access_denied" in page.url
    assert page.status_code == 403
    assert "Vous n'avez pas autorisé ce service" in html.unescape(page.text)
    # A forged response (another issuer) is refused too, with a French message.
    forged = browser.get(app_url + "/callback", params={
        "code": "x", "state": "y", "iss": "https://evil.example"})
    assert forged.status_code == 400 and "service de connexion attendu" in forged.text


def test_signing_out_at_the_provider_ends_the_apps_session_through_the_back_channel(
        start_provider, start_sample_app, live, user_factory):
    user = user_factory(email="dominique.leroy@example.org")
    app_url = _sample_app(start_provider, start_sample_app, live)
    browser = WebBrowser()
    home = browser.drive(browser.get(app_url + "/connexion"), email=user.email)
    assert home.url == app_url + "/"
    started = browser.submit(browser.get(app_url + "/demarches/aide-logement"), "start")
    dossier = app_url + started.headers["Location"]
    assert browser.get(dossier).status_code == 200
    # Signed out from the provider's own pages ("Se déconnecter" in its header), not
    # through the app: the provider posts a logout token to the app's back channel.
    account = browser.get(live.issuer + "/compte/")
    assert browser.submit(account, "confirm").status_code in (200, 302)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not browser.get(dossier).is_redirect:
        time.sleep(0.25)
    assert browser.get(dossier).is_redirect, "the app's session survived the logout"
