"""Authorization endpoint: validation, prompt, max_age, hints, claims, consent."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import urlencode

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import ISSUER
from tests.oidc.test_code_flow import exchange, sign_in
from tests.support import pkce_pair, query_of, resume_of


def test_unknown_client_gets_an_error_page_never_a_redirect(browser):
    response = browser.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": "nope", "redirect_uri": "https://evil.example/cb",
        "scope": "openid"}))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "ne peut pas aboutir" in response.get_data(as_text=True)


def test_unregistered_redirect_uri_gets_an_error_page(browser, rp):
    for uri in ("https://evil.example/callback", rp.redirect_uri + "/extra",
                rp.redirect_uri.upper(), rp.redirect_uri + "?x=1"):
        response, _, _ = browser.authorize(rp, redirect_uri=uri)
        assert response.status_code == 400, uri
        assert "Location" not in response.headers


# RFC 6749 §4.1.2.1: an error_description carries printable ASCII but '"' and '\\';
# Authlib raises ValueError when asked to build one from such a value (a 500). A NUL
# is refused before (tests/security/test_input_guard.py).
OUTSIDE_THE_ERROR_ALPHABET = ['co"de', "code\\", "cod\u00e9", "\U0001f600", "code\x01", "code\n"]


@pytest.mark.parametrize("value", OUTSIDE_THE_ERROR_ALPHABET)
def test_a_response_type_outside_the_error_alphabet_is_unsupported(browser, rp, value):
    response, _, query = browser.authorize(rp, response_type=value)
    assert response.status_code == 302
    result = query_of(response.headers["Location"])
    assert result["error"] == "unsupported_response_type"
    assert result["state"] == query["state"]
    assert value not in result.get("error_description", "")
    unknown = browser.get("/authorize?" + urlencode({"response_type": value, "client_id": "nope"}))
    assert unknown.status_code == 400 and "Location" not in unknown.headers


@pytest.mark.parametrize("value", OUTSIDE_THE_ERROR_ALPHABET)
def test_a_redirect_uri_outside_the_error_alphabet_gets_an_error_page(browser, rp, value):
    response, _, _ = browser.authorize(rp, redirect_uri=rp.redirect_uri + value)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "ne peut pas aboutir" in response.get_data(as_text=True)


def test_unsupported_response_type_redirects_with_error_state_and_iss(browser, rp):
    response, _, query = browser.authorize(rp, response_type="token")
    assert response.status_code == 302
    result = query_of(response.headers["Location"])
    assert result["error"] == "unsupported_response_type"
    assert result["state"] == query["state"] and result["iss"] == ISSUER


def test_public_client_must_use_pkce_s256(browser, client_factory):
    public = client_factory(public=True, require_consent=False)
    response = browser.get("/authorize?" + urlencode({
        "response_type": "code", "client_id": public.client_id, "scope": "openid",
        "redirect_uri": public.redirect_uri, "state": "s1"}))
    result = query_of(response.headers["Location"])
    assert result["error"] == "invalid_request" and result["state"] == "s1"
    _, challenge = pkce_pair()
    response, _, _ = browser.authorize(public, code_challenge_method="plain",
                                       code_challenge=challenge)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"
    response, _, _ = browser.authorize(public, code_challenge_method=None)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_public_client_completes_flow_with_pkce(browser, client_factory, user):
    public = client_factory(public=True, require_consent=False)
    result, verifier, _ = sign_in(browser, public, user)
    token = exchange(browser, public, result["code"], verifier)
    assert token.status_code == 200, token.json
    missing = exchange(browser, public, result["code"], "")
    assert missing.status_code == 400


def test_request_objects_are_refused_with_spec_errors(browser, rp):
    response, _, _ = browser.authorize(rp, request="eyJhbGciOiJub25lIn0.e30.")
    assert query_of(response.headers["Location"])["error"] == "request_not_supported"
    response, _, _ = browser.authorize(rp, request_uri="https://x.example/r")
    assert query_of(response.headers["Location"])["error"] == "request_uri_not_supported"


def test_prompt_none_without_session_returns_login_required(browser, rp):
    response, _, query = browser.authorize(rp, prompt="none")
    result = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(rp.redirect_uri)
    assert result == {"error": "login_required", "state": query["state"], "iss": ISSUER}


def test_prompt_none_with_session_issues_code_silently(browser, rp, user):
    sign_in(browser, rp, user)
    response, _, _ = browser.authorize(rp, prompt="none")
    assert "code" in query_of(response.headers["Location"])


def test_prompt_none_combined_with_other_values_is_invalid(browser, rp):
    response, _, _ = browser.authorize(rp, prompt="none login")
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_prompt_login_forces_a_new_authentication(browser, rp, user):
    sign_in(browser, rp, user)
    response, _, _ = browser.authorize(rp, prompt="login")
    assert b'name="password"' in browser.get(response.headers["Location"]).data
    location = browser.follow_to_client(response, email=user.email)
    assert "code" in query_of(location)


def test_max_age_zero_forces_login_and_updates_auth_time(browser, rp, user, svc, app):
    first, verifier, _ = sign_in(browser, rp, user)
    tokens = exchange(browser, rp, first["code"], verifier).json
    time.sleep(1.1)
    response, verifier2, _ = browser.authorize(rp, max_age="0")
    assert b'name="password"' in browser.get(response.headers["Location"]).data
    second = query_of(browser.follow_to_client(response, email=user.email))
    tokens2 = exchange(browser, rp, second["code"], verifier2).json
    keys = KeySet.import_key_set(browser.get("/jwks.json").json)
    t1 = jwt.decode(tokens["id_token"], keys).claims["auth_time"]
    t2 = jwt.decode(tokens2["id_token"], keys).claims["auth_time"]
    assert t2 > t1


def test_max_age_must_be_a_non_negative_integer(browser, rp):
    for value in ("abc", "-1"):
        response, _, _ = browser.authorize(rp, max_age=value)
        assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_login_hint_prefills_the_email(browser, rp):
    response, _, _ = browser.authorize(rp, login_hint="hint@example.org")
    page = browser.get(response.headers["Location"])
    assert 'value="hint@example.org"' in page.get_data(as_text=True)


def test_id_token_hint_of_another_user_with_prompt_none_is_login_required(
        browser, new_browser, rp, user, user_factory):
    other = user_factory(email="other@example.org")
    other_browser = new_browser()
    result, verifier, _ = sign_in(other_browser, rp, other)
    other_id_token = exchange(other_browser, rp, result["code"], verifier).json["id_token"]
    sign_in(browser, rp, user)
    response, _, _ = browser.authorize(rp, prompt="none", id_token_hint=other_id_token)
    assert query_of(response.headers["Location"])["error"] == "login_required"
    response, _, _ = browser.authorize(rp, prompt="none", id_token_hint="garbage")
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_claims_parameter_puts_requested_claims_in_the_id_token(browser, rp, user):
    claims = '{"id_token": {"email": {"essential": true}, "given_name": null}}'
    result, verifier, _ = sign_in(browser, rp, user, claims=claims)
    id_token = exchange(browser, rp, result["code"], verifier).json["id_token"]
    keys = KeySet.import_key_set(browser.get("/jwks.json").json)
    decoded = jwt.decode(id_token, keys).claims
    assert decoded["email"] == user.email and decoded["given_name"] == "Marie"
    assert "family_name" not in decoded


def test_claims_parameter_must_be_a_json_object(browser, rp):
    for bad in ("not json", "[1]", '{"other": {}}'):
        response, _, _ = browser.authorize(rp, claims=bad)
        assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_acr_values_for_multi_factor_needs_interaction(browser, rp, user):
    sign_in(browser, rp, user)
    response, _, _ = browser.authorize(rp, prompt="none", acr_values="eidas2")
    assert query_of(response.headers["Location"])["error"] == "interaction_required"


def test_consent_screen_lists_claims_in_french_and_is_remembered(browser, client_factory, user):
    third_party = client_factory(name="Aide au logement")
    page, _, _ = browser.authorize(third_party, scope="openid profile email phone")
    page = browser.get(page.headers["Location"])
    page = browser.submit(page, "email", {"email": user.email, "password": "correct horse battery staple"})
    page = browser.get(page.headers["Location"])
    html = page.get_data(as_text=True)
    assert "Aide au logement" in html and "Votre adresse e-mail" in html
    assert "Votre numéro de téléphone" in html
    done = browser.submit(page, "decision", button=("decision", "allow"))
    assert "code" in query_of(done.headers["Location"])
    again, _, _ = browser.authorize(third_party, scope="openid email")
    assert "code" in query_of(again.headers["Location"])  # remembered, no screen
    forced, _, _ = browser.authorize(third_party, scope="openid email", prompt="consent")
    assert forced.status_code == 200 and b'value="allow"' in forced.data
    wider, _, _ = browser.authorize(third_party, scope="openid email address")
    assert wider.status_code == 200 and b"Votre adresse postale" in wider.data


def test_consent_denied_returns_access_denied(browser, client_factory, user):
    third_party = client_factory()
    response, _, query = browser.authorize(third_party)
    location = browser.follow_to_client(response, email=user.email, consent=False)
    result = query_of(location)
    assert result["error"] == "access_denied" and result["state"] == query["state"]


def test_prompt_none_when_consent_is_missing_is_consent_required(browser, client_factory, rp, user):
    sign_in(browser, rp, user)
    third_party = client_factory()
    response, _, _ = browser.authorize(third_party, prompt="none")
    assert query_of(response.headers["Location"])["error"] == "consent_required"


def test_resume_of_unknown_or_foreign_flow_is_an_error_page(browser, new_browser, rp):
    response, _, _ = browser.authorize(rp)
    resume = resume_of(response)
    other = new_browser()
    assert other.get(resume).status_code == 400
    assert browser.get("/authorize/resume/does-not-exist").status_code == 400


def test_authorization_request_by_post(browser, rp, user):
    """OIDC Core §3.1.2.1: the authorization endpoint accepts form-encoded POST."""
    sign_in(browser, rp, user)
    verifier, challenge = pkce_pair()
    response = browser.post("/authorize", data={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid email", "state": "posted", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    result = query_of(response.headers["Location"])
    assert result["state"] == "posted" and "code" in result
    assert exchange(browser, rp, result["code"], verifier).status_code == 200


def test_duplicated_parameters_are_invalid(browser, rp):
    response = browser.get("/authorize?" + urlencode([
        ("response_type", "code"), ("client_id", rp.client_id), ("redirect_uri", rp.redirect_uri),
        ("scope", "openid"), ("state", "a"), ("state", "b")]))
    # Which "state" to echo is ambiguous: an error page, not a redirect.
    assert response.status_code == 400 and "Location" not in response.headers


# -- the sign-in that an authorization request waits for ---------------------------------

def _login_page(browser, response):
    """The login page the authorization request redirects to."""
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?return_to=")
    page = browser.get(response.headers["Location"])
    assert page.status_code == 200 and b'name="password"' in page.data
    return page


def _login(browser, page, email, password="correct horse battery staple", **extra):
    return browser.submit(page, "email", {"email": email, "password": password, **extra})


def test_the_authorization_request_redirects_to_the_login_page(browser, rp, user):
    response, _, _ = browser.authorize(rp, ui_locales="en")
    assert response.headers["Cache-Control"] == "no-store"
    page = _login_page(browser, response)
    html = page.get_data(as_text=True)
    assert '<html lang="en">' in html and "<h1>Sign in</h1>" in html
    assert 'action="/login?flow=' in html
    # Reloading the address starts again with new flows; both pages work.
    again, _, _ = browser.authorize(rp)
    assert resume_of(_login_page(browser, again)) != resume_of(page)
    done = _login(browser, page, user.email)
    assert done.status_code == 302 and done.headers["Location"] == resume_of(page)


def test_the_login_goes_back_to_the_waiting_authorization_request(browser, rp, user):
    response, verifier, query = browser.authorize(rp)
    page = _login_page(browser, response)
    resume = resume_of(page)
    done = _login(browser, page, user.email)
    assert done.status_code == 302 and done.headers["Location"] == resume
    answer = browser.get(resume)
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(rp.redirect_uri + "?")
    assert answer.headers["Cache-Control"] == "no-store"
    result = query_of(answer.headers["Location"])
    assert result["state"] == query["state"] and result["iss"] == ISSUER
    assert exchange(browser, rp, result["code"], verifier).status_code == 200
    # The authorization request was answered once: its resume is gone.
    assert browser.get(resume).status_code == 400


def test_a_wrong_password_answers_no_code(browser, rp, user):
    response, _, _ = browser.authorize(rp)
    refused = _login(browser, _login_page(browser, response), user.email,
                     password="not the password at all")
    assert refused.status_code == 400 and "Location" not in refused.headers


def test_a_client_that_asks_consent_shows_its_screen_after_the_login(
        browser, client_factory, user):
    third_party = client_factory(name="Aide au logement")
    response, _, _ = browser.authorize(third_party)
    # A "decision" field smuggled into the login form grants nothing.
    done = _login(browser, _login_page(browser, response), user.email, decision="allow")
    assert done.status_code == 302
    assert done.headers["Location"].startswith("/authorize/resume/")
    screen = browser.get(done.headers["Location"])
    assert screen.status_code == 200 and b'value="allow"' in screen.data


def test_new_terms_are_accepted_before_the_code(browser, rp, user_factory):
    person = user_factory(email="anciennes-cgu@example.org", terms_version="2020-01")
    response, _, _ = browser.authorize(rp)
    done = _login(browser, _login_page(browser, response), person.email)
    assert done.headers["Location"].startswith("/authorize/resume/")
    terms = browser.get(done.headers["Location"])
    assert terms.status_code == 302
    assert terms.headers["Location"].startswith("/conditions-generales/accepter")


def test_a_stale_authorization_request_is_redirected_to_not_answered(browser, user):
    page = browser.get("/login?return_to=/authorize/resume/does-not-exist")
    done = browser.submit(page, "email", {"email": user.email,
                                          "password": "correct horse battery staple"})
    assert done.status_code == 302
    assert done.headers["Location"] == "/authorize/resume/does-not-exist"
    assert browser.get(done.headers["Location"]).status_code == 400


def test_other_destinations_are_redirected_to(browser, user):
    done = browser.login(user.email, start="/login?return_to=/compte/")
    assert done.status_code == 302 and done.headers["Location"] == "/compte/"


def test_form_post_response_mode_posts_the_code_back(browser, rp, user):
    sign_in(browser, rp, user)
    response, verifier, query = browser.authorize(rp, response_mode="form_post")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert f'action="{rp.redirect_uri}"' in html and 'method="post"' in html
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', html))
    assert fields["state"] == query["state"] and fields["iss"] == ISSUER
    assert exchange(browser, rp, fields["code"], verifier).status_code == 200
    assert "form_post" in browser.get("/.well-known/openid-configuration").json[
        "response_modes_supported"]


def test_form_post_carries_errors_too_and_unknown_modes_are_refused(browser, client_factory,
                                                                    user):
    third_party = client_factory()
    sign_in_page, _, _ = browser.authorize(third_party, response_mode="form_post",
                                           prompt="none")
    html = sign_in_page.get_data(as_text=True)
    assert 'name="error" value="login_required"' in html
    response, _, _ = browser.authorize(third_party, response_mode="fragment")
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_a_claim_asked_one_by_one_is_shown_on_the_consent_screen_then_released(
        browser, client_factory, user_factory):
    user = user_factory(phone_number="+33612345678")
    third_party = client_factory(name="Aide au logement",
                                 scopes=["openid", "email", "phone", "offline_access"])
    claims = json.dumps({"userinfo": {"phone_number": None, "address": None}})
    response, verifier, _ = browser.authorize(third_party, scope="openid email", claims=claims)
    login = browser.get(response.headers["Location"])
    screen = browser.get(browser.submit(login, "email", {
        "email": user.email, "password": "correct horse battery staple"}).headers["Location"])
    html = screen.get_data(as_text=True)
    assert "Votre numéro de téléphone" in html
    assert "adresse postale" not in html  # not a scope the client is registered for
    done = browser.submit(screen, "decision", button=("decision", "allow"))
    tokens = exchange(browser, third_party, query_of(done.headers["Location"])["code"],
                      verifier).json
    info = browser.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).json
    assert info["phone_number"] == "+33612345678" and "address" not in info
    # Remembered: the same request asks nothing more.
    again, _, _ = browser.authorize(third_party, scope="openid email", claims=claims)
    assert "code" in query_of(again.headers["Location"])
    # Without the claims parameter, the scope alone does not release it.
    plain, verifier, _ = browser.authorize(third_party, scope="openid email")
    tokens = exchange(browser, third_party, query_of(plain.headers["Location"])["code"],
                      verifier).json
    info = browser.get("/userinfo", headers={
        "Authorization": f"Bearer {tokens['access_token']}"}).json
    assert "phone_number" not in info
