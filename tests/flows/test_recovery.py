"""The mutualised "mot de passe perdu" flow, end to end through its pages."""

from __future__ import annotations

import datetime as dt
import html
import re

from sqlalchemy import select, update

from idp.flows.recovery import CODE_ALPHABET
from idp.persistence.flows import load_flow, read_flow
from idp.persistence.models import Consumable, User
from tests.conftest import basic_auth
from tests.flows.conftest import (STRONG_PASSWORD, fragment_values, href, link_in, post_form,
                                  text)
from tests.oidc.test_code_flow import exchange, sign_in
from tests.support import PASSWORD, form_with, query_of

CODE_RE = re.compile(rf"\b[{CODE_ALPHABET}]{{6}}\b")


def choose(browser, population="usager", start="/login"):
    login = browser.get(start)
    assert login.status_code == 200
    page = browser.get(href(login, "Mot de passe perdu"))
    assert page.status_code == 200
    return post_form(browser, page, "/mot-de-passe-perdu?", {"population": population})


def ask_code(browser, email, start="/login", captcha="test-pass"):
    chosen = choose(browser, start=start)
    assert chosen.status_code == 303 and "/mot-de-passe-perdu/adresse" in chosen.headers["Location"]
    page = browser.get(chosen.headers["Location"])
    assert page.status_code == 200
    return post_form(browser, page, "email", {"email": email, "captcha_payload": captcha})


def through_progress(browser, done):
    """From the new-password POST to the success page (no page that moves on by itself:
    WCAG 2.2.1)."""
    assert "/mot-de-passe-perdu/termine?flow=" in done.headers["Location"]
    success = browser.get(done.headers["Location"])
    assert 'http-equiv="refresh"' not in text(success)
    assert browser.get(done.headers["Location"].replace("/termine", "/en-cours")
                       ).headers["Location"] == done.headers["Location"]
    return success


def code_of(message) -> str:
    match = CODE_RE.search(message["text"])
    assert match, message["text"]
    return match.group(0)


def flow_id(location: str) -> str:
    return query_of(location)["flow"]


def shift(app, svc, model, *criteria, **values):
    with app.app_context():
        svc.db.session.execute(update(model).where(*criteria).values(**values))
        svc.db.session.commit()
        svc.db.session.remove()


def past():
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)


def test_population_selector_is_an_accessible_radio_group(browser, svc):
    page = browser.get("/mot-de-passe-perdu")
    html = text(page)
    assert page.status_code == 200
    assert "<fieldset" in html and "<legend>" in html
    for population in svc.settings.populations:
        assert population.label in html
        assert f'value="{population.key}"' in html
    assert "Exemples\u00a0: demandeur d'aide" in html
    assert 'aria-describedby="population-exemples"' in html
    missing = post_form(browser, page, "/mot-de-passe-perdu?", {})
    assert missing.status_code == 400 and 'href="#population"' in text(missing)
    bogus = post_form(browser, page, "/mot-de-passe-perdu?", {"population": "pirate"})
    assert bogus.status_code == 400


def test_redirect_and_support_populations(browser, svc):
    staff = choose(browser, "agent_lycee")
    assert staff.status_code == 303
    page = browser.get(staff.headers["Location"])
    assert page.status_code == 200
    assert svc.settings.population("agent_lycee").recovery_url in text(page)
    helped = choose(browser, "assistance")
    page = browser.get(helped.headers["Location"])
    assert page.status_code == 200 and "Besoin d'assistance" in text(page)


def test_reset_by_email_link_ends_sessions_and_tokens(app, svc, browser, new_browser, rp,
                                                      user, outbox, audit_types):
    # Before: the user is signed in elsewhere and a client holds a refresh token.
    elsewhere = new_browser()
    result, verifier, _ = sign_in(elsewhere, rp, user, scope="openid email offline_access")
    tokens = exchange(elsewhere, rp, result["code"], verifier).json
    assert "refresh_token" in tokens
    assert elsewhere.get("/compte/").status_code == 200

    response = ask_code(browser, user.email)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/mot-de-passe-perdu/code?flow=")
    page = browser.get(response.headers["Location"])
    assert page.status_code == 200 and user.email in text(page)

    (message,) = outbox(to=user.email)
    assert message["subject"] == "Réinitialisation de votre mot de passe"
    code = code_of(message)
    link = link_in(message)
    # The code travels in the link's fragment, which the browser keeps to itself; the
    # page's script fills the field with it. Opening the link consumes nothing.
    path, _, fragment = link.partition("#")
    assert fragment == f"code={code}" and code not in path
    filled = browser.get(link)
    assert filled.status_code == 200 and code not in text(filled)
    assert 'data-fragment-field="code"' in text(filled)
    assert '<script src="/static/js/fragment-code.js"' in text(filled)
    accepted = browser.submit(filled, "code", fragment_values(link))
    assert accepted.status_code == 303
    assert accepted.headers["Location"].startswith("/mot-de-passe-perdu/nouveau?flow=")
    form = browser.get(accepted.headers["Location"])
    assert "Au moins 12 caractères" in text(form)

    weak = post_form(browser, form, "password", {"password": "marie dupont 1",
                                                  "password_confirm": "marie dupont 1"})
    assert weak.status_code == 400 and "votre nom" in text(weak)
    mismatch = post_form(browser, weak, "password", {"password": STRONG_PASSWORD,
                                                     "password_confirm": STRONG_PASSWORD + "!"})
    assert mismatch.status_code == 400 and "pas identiques" in text(mismatch)
    done = post_form(browser, mismatch, "password", {"password": STRONG_PASSWORD,
                                                     "password_confirm": STRONG_PASSWORD})
    assert done.status_code == 303
    # Sent by the request itself: there before the answer is read or closed.
    assert [m["subject"] for m in outbox(to=user.email)][-1] == "Votre mot de passe a été modifié"
    success = through_progress(browser, done)
    assert success.status_code == 200
    assert "Votre mot de passe a été modifié" in text(success)
    assert href(success, "Continuer") == "/compte/"

    # The old SSO session and the old refresh token no longer work.
    assert elsewhere.get("/compte/").status_code == 302
    refreshed = elsewhere.post("/token", headers=basic_auth(rp), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 400 and refreshed.json["error"] == "invalid_grant"
    # The owner is told; no password in any message.
    changed = [m for m in outbox(to=user.email) if m["subject"] == "Votre mot de passe a été modifié"]
    assert len(changed) == 1
    for m in outbox():
        assert STRONG_PASSWORD not in m["text"] + m["html"]
    assert "password.reset" in audit_types()
    # The new password works, the old one does not; the code cannot be used again.
    assert new_browser().login(user.email, PASSWORD).status_code == 400
    assert new_browser().login(user.email, STRONG_PASSWORD).status_code == 302
    again = browser.submit(filled, "code", fragment_values(link))
    assert again.status_code == 400 and "Recommencer" in text(again)


def test_unknown_email_is_answered_like_a_known_one(app, svc, browser, new_browser, user,
                                                   outbox):
    known = ask_code(browser, user.email)
    other = new_browser()
    unknown = ask_code(other, "personne@example.org")
    assert known.status_code == unknown.status_code == 303
    assert known.headers["Location"].replace(flow_id(known.headers["Location"]), "F") == \
        unknown.headers["Location"].replace(flow_id(unknown.headers["Location"]), "F")
    known_page = browser.get(known.headers["Location"])
    unknown_page = other.get(unknown.headers["Location"])

    def strip(page, flow, email):
        html = text(page).replace(flow, "FLOW").replace(email, "EMAIL")
        return re.sub(r'name="csrf_token"[^>]*value="[^"]+"', 'name="csrf_token"', html)

    assert known_page.status_code == unknown_page.status_code == 200
    assert strip(known_page, flow_id(known.headers["Location"]), user.email) == \
        strip(unknown_page, flow_id(unknown.headers["Location"]), "personne@example.org")
    assert len(outbox()) == 1 and outbox()[0]["to"] == user.email
    # A wrong code is answered the same way too.
    wrong_known = browser.submit(known_page, "code", {"code": "AAAAAA"})
    wrong_unknown = other.submit(unknown_page, "code", {"code": "AAAAAA"})
    assert wrong_known.status_code == wrong_unknown.status_code == 400
    assert strip(wrong_known, flow_id(known.headers["Location"]), user.email) == \
        strip(wrong_unknown, flow_id(unknown.headers["Location"]), "personne@example.org")


def test_wrong_codes_then_too_many_tries_restart_the_flow(app, svc, browser, user, outbox):
    response = ask_code(browser, user.email)
    page = browser.get(response.headers["Location"])
    code = code_of(outbox(to=user.email)[0])
    wrong = "A" * 6 if code != "A" * 6 else "B" * 6
    for left in (4, 3, 2, 1):
        page = browser.submit(page, "code", {"code": wrong})
        assert page.status_code == 400
        html = text(page)
        assert "Ce code n'est pas le bon" in html
        assert f"Il vous reste {left} essai" in html
        assert 'href="#code"' in html
    locked = browser.submit(page, "code", {"code": wrong})
    assert locked.status_code == 400 and "Trop d'essais" in text(locked)
    # Even the right code is refused now: the flow must restart.
    after = browser.submit(page, "code", {"code": code})
    assert after.status_code == 400 and "Recommencer" in text(after)
    assert browser.get(response.headers["Location"]).status_code == 400


def test_a_code_of_the_wrong_shape_uses_no_try(app, svc, browser, user, outbox):
    """Review 2026-12 (codes as citizens meet them): a code of the wrong length cost a try
    in recovery."""
    response = ask_code(browser, user.email)
    page = browser.get(response.headers["Location"])
    code = code_of(outbox(to=user.email)[0])
    for junk, message in (("ABC", "compte 6 caractères"), ("T3A8XQ7", "compte 6 caractères"),
                          ("T0A8XQ", "jamais 0, O, 1, I ni L")):
        refused = browser.submit(page, "code", {"code": junk})
        assert refused.status_code == 400 and message in text(refused)
        assert 'href="#code"' in text(refused)
    wrong = "A" * 6 if code != "A" * 6 else "B" * 6
    first_wrong = browser.submit(page, "code", {"code": wrong})
    assert "Il vous reste 4 essais" in text(first_wrong)
    assert browser.submit(page, "code", {"code": f" {code[:3]}-{code[3:].lower()} "}) \
        .status_code == 303


def test_expired_code(app, svc, browser, user, outbox):
    response = ask_code(browser, user.email)
    page = browser.get(response.headers["Location"])
    code = code_of(outbox(to=user.email)[0])
    shift(app, svc, Consumable, Consumable.kind == "recovery_code", expires_at=past())
    expired = browser.submit(page, "code", {"code": code})
    assert expired.status_code == 400 and "Ce code a expiré" in text(expired)


def test_code_ttl_and_a_new_code_voids_the_old(app, svc, browser, user, outbox):
    response = ask_code(browser, user.email)
    with app.app_context():
        item = svc.db.session.scalar(select(Consumable).where(Consumable.kind == "recovery_code"))
        minutes = (item.expires_at - item.created_at).total_seconds() / 60
        assert round(minutes) == 60 and item.user_id == user.id and item.secret_hash
        svc.db.session.remove()
    page = browser.get(response.headers["Location"])
    first = code_of(outbox(to=user.email)[0])
    assert first not in str(item.secret_hash)
    too_soon = browser.submit(page, "resend", button=("resend", "1"))
    assert too_soon.status_code == 400 and "Patientez" in text(too_soon)
    flow = flow_id(response.headers["Location"])
    with app.app_context():
        row = load_flow(svc.db.session, flow, "recovery", read_flow(svc.kv, flow).browser)
        row.data = {**row.data, "last_sent_at": 0}
        svc.db.session.commit()
        svc.db.session.remove()
    resent = browser.submit(page, "resend", button=("resend", "1"))
    assert resent.status_code == 200 and "Un nouveau code a été envoyé" in text(resent)
    second = code_of(outbox(to=user.email)[-1])
    if second != first:
        old = browser.submit(resent, "code", {"code": first})
        assert old.status_code == 400
    ok = browser.submit(resent, "code", {"code": second.lower()})
    assert ok.status_code == 303


def test_code_by_sms_when_preferred_and_verified(app, svc, browser, user_factory, outbox):
    person = user_factory(email="sms.user@example.org", phone_number="+33612345678",
                          phone_number_verified=True, preferred_contact="sms")
    response = ask_code(browser, person.email)
    assert response.status_code == 303
    assert outbox(to=person.email) == []
    (sms,) = outbox(kind="sms")
    assert sms["to"] == "+33612345678"
    code = code_of(sms)
    with app.app_context():
        item = svc.db.session.scalar(select(Consumable).where(Consumable.kind == "recovery_code"))
        assert round((item.expires_at - item.created_at).total_seconds() / 60) == 10
        svc.db.session.remove()
    page = browser.get(response.headers["Location"])
    accepted = browser.submit(page, "code", {"code": code})
    assert accepted.status_code == 303
    with app.app_context():
        assert svc.db.session.get(User, person.id).email_verified is True  # unchanged
        svc.db.session.remove()
    # The password-changed notice follows the preferred mode, as in "Mon compte".
    form = browser.get(accepted.headers["Location"])
    done = post_form(browser, form, "password", {"password": STRONG_PASSWORD,
                                                  "password_confirm": STRONG_PASSWORD})
    assert done.status_code == 303
    notice = outbox(kind="sms")[-1]
    assert notice["to"] == "+33612345678"
    assert "mot de passe de votre compte a été modifié" in notice["text"]
    assert outbox(to=person.email) == []


def test_captcha_is_required_and_bad_input_is_a_french_message(browser, user, outbox):
    missing = ask_code(browser, user.email, captcha=None)
    assert missing.status_code == 400 and 'href="#captcha_answer"' in text(missing)
    bad = post_form(browser, missing, "email", {"email": "pas une adresse",
                                                "captcha_payload": "test-pass"})
    assert bad.status_code == 400 and "adresse e-mail valide" in text(bad)
    assert outbox() == []
    empty = post_form(browser, bad, "email", {"email": "", "captcha_payload": "test-pass"})
    assert empty.status_code == 400


def test_flow_is_bound_to_its_browser_and_bad_ids_are_not_500(browser, new_browser, user,
                                                               outbox):
    response = ask_code(browser, user.email)
    link = link_in(outbox(to=user.email)[0])
    other = new_browser().get(link)
    assert other.status_code == 400 and "autre navigateur" in text(other)
    for url in ("/mot-de-passe-perdu/code?flow=nope", "/mot-de-passe-perdu/nouveau",
                "/mot-de-passe-perdu/termine?flow=" + "x" * 100,
                "/mot-de-passe-perdu?flow=nope"):
        assert browser.get(url).status_code == 400, url
    # Skipping ahead to the password step is refused.
    skipped = browser.get(response.headers["Location"].replace("/code?", "/nouveau?"))
    assert skipped.status_code == 400
    assert browser.post(response.headers["Location"], data={"code": "x"}).status_code == 400


def test_recovery_inside_an_authorization_request_ends_at_the_client(
        app, svc, browser, rp, user, outbox):
    response, verifier, query = browser.authorize(rp)
    response = browser.get(response.headers["Location"])
    assert response.status_code == 200  # the login page
    assert ask_code(browser, user.email,
                    start=response.request.full_path).status_code == 303
    code = code_of(outbox(to=user.email)[0])
    page = browser.get(link_in(outbox(to=user.email)[0]))
    accepted = browser.submit(page, "code", {"code": code})
    form = browser.get(accepted.headers["Location"])
    done = post_form(browser, form, "password", {"password": STRONG_PASSWORD,
                                                 "password_confirm": STRONG_PASSWORD})
    success = through_progress(browser, done)
    continue_url = href(success, "Continuer")
    assert continue_url.startswith("/authorize/resume/")
    location = browser.follow_to_client(browser.get(continue_url), email=user.email,
                                        password=STRONG_PASSWORD)
    result = query_of(location)
    assert location.startswith(rp.redirect_uri)
    assert result["state"] == query["state"] and result["code"]
    assert exchange(browser, rp, result["code"], verifier).status_code == 200


def test_a_password_reset_lifts_a_login_block(app, svc, browser, new_browser, user, outbox):
    from idp.security import lockout

    # An attacker blocked the account with wrong passwords (each attempt is counted by
    # begin(), then judged by failed()).
    limits = svc.settings.rate_limits
    for _ in range(limits.account_block_after):
        svc.kv.incr(lockout.failures_key(user.email), limits.account_block_window)
    assert lockout.failed(svc.kv, svc.settings, user.email).blocked
    assert lockout.begin(svc.kv, svc.settings, user.email).allowed is False
    blocked = new_browser().login(user.email)
    assert blocked.status_code != 302  # refused (captcha first, then the block)
    # The owner resets the password through the recovery flow...
    response = ask_code(browser, user.email)
    page = browser.get(response.headers["Location"])
    (message,) = outbox(to=user.email)
    link = link_in(message)
    accepted = browser.submit(browser.get(link), "code", fragment_values(link))
    form = browser.get(accepted.headers["Location"])
    done = post_form(browser, form, "password", {"password": STRONG_PASSWORD,
                                                 "password_confirm": STRONG_PASSWORD})
    assert done.status_code == 303 and page.status_code == 200
    # ...and can sign in at once with the new one.
    assert new_browser().login(user.email, STRONG_PASSWORD).status_code == 302


def test_support_page_shows_the_configured_help_desk(make_app):
    from tests.support import Browser

    app = make_app(registration={"captcha_backend": "test"}, support={
        "email": "assistance@example.org", "phone": "+687 27 00 00",
        "hours": "du lundi au vendredi, 7 h 30 – 16 h", "url": "https://aide.example.org/contact"})
    browser = Browser(app.test_client())
    page = browser.get(choose(browser, "assistance").headers["Location"])
    body = text(page)
    assert page.status_code == 200
    assert 'href="mailto:assistance@example.org"' in body
    assert 'href="tel:+68727000' in body and "du lundi au vendredi" in body
    assert 'href="https://aide.example.org/contact"' in body
    assert "Ne communiquez jamais votre mot de passe" in body


def test_each_step_answers_its_post_by_a_redirect_back_and_reload_send_nothing(
        browser, user, outbox):
    """Post/Redirect/Get: a page answering a POST (here a wrong code) is shown by a GET,
    once; Back or reload on that address shows the step afresh, never "Confirm Form
    Resubmission"."""
    response = ask_code(browser, user.email)
    page = browser.get(response.headers["Location"])
    form = form_with(page.data, "code")
    raw = browser.client.post(form["action"], data={**form["fields"], "code": "ZZZZZZ"})
    assert raw.status_code == 303
    location = raw.headers["Location"]
    assert location.startswith("/mot-de-passe-perdu/code?flow=") and "vue=" in location
    shown = browser.get(location)
    assert shown.status_code == 400 and "Ce code n'est pas le bon" in text(shown)
    again = browser.get(location)  # Back, or reload
    assert again.status_code == 303
    fresh = browser.get(again.headers["Location"])
    assert fresh.status_code == 200 and "Ce code n'est pas le bon" not in text(fresh)
    # The page is kept for its own browser only.
    raw = browser.client.post(form["action"], data={**form["fields"], "code": "ZZZZZZ"})
    from tests.support import Browser
    stranger = Browser(browser.client.application.test_client())
    assert stranger.get(raw.headers["Location"]).status_code != 400
