"""Account creation end to end through its pages, and the e-mail confirmation link."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from idp.persistence.models import Consumable, User
from tests.conftest import basic_auth
from tests.flows.conftest import (STRONG_PASSWORD, fragment_values, href, link_in, post_form,
                                  text)
from tests.support import query_of

NEW_EMAIL = "jeanne.martin@example.org"


def registration_values(**overrides):
    values = {"email": NEW_EMAIL, "given_name": "Jeanne", "family_name": "Martin",
              "phone": "06 12 34 56 78", "password": STRONG_PASSWORD,
              "password_confirm": STRONG_PASSWORD, "accept_terms": "y",
              "captcha_payload": "test-pass"}
    values.update(overrides)
    return values


def open_form(browser, start="/login"):
    login = browser.get(start)
    assert login.status_code == 200
    page = browser.get(href(login, "Créer un compte"))
    assert page.status_code == 200
    return page


def register(browser, **overrides):
    return post_form(browser, open_form(browser), "given_name", registration_values(**overrides))


def load_user(app, svc, email):
    with app.app_context():
        user = svc.db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            svc.db.session.expunge(user)
        svc.db.session.remove()
        return user


def normalised(page, *secrets_):
    """The page without what differs between two answers by design: the flow id, the CSRF
    token and the address typed in."""
    html = text(page)
    html = re.sub(r"flow=[0-9a-f-]{36}", "flow=FLOW", html)
    html = re.sub(r'name="csrf_token"[^>]*value="[^"]+"', 'name="csrf_token"', html)
    for value in secrets_:
        html = html.replace(value, "EMAIL")
    return html


def test_form_shows_the_password_rule_and_accessible_fields(browser):
    page = open_form(browser)
    html = text(page)
    assert "Au moins 12 caractères" in html  # describe_policy, before typing
    for name in ("email", "given_name", "family_name", "phone", "password",
                 "password_confirm", "accept_terms"):
        assert f'<label for="{name}"' in html, name
    assert 'autocomplete="new-password"' in html and 'autocomplete="tel"' in html
    assert "Vérification anti-robot" in html and "conditions générales" in html


def confirm(browser, link, button=("confirm_email", "1")):
    """Open the link, then post its form with the code its fragment holds (what the
    page's script does)."""
    page = browser.get(link)
    assert page.status_code == 200, text(page)[:500]
    return browser.submit(page, "code", fragment_values(link), button=button)


def test_no_sign_in_before_the_address_is_confirmed(app, svc, browser, outbox,
                                                    audit_types):
    """Review 2026-12, finding 3: registering someone else's address signed its creator
    in, who could then take over the address's recovery."""
    response = register(browser, email="  Jeanne.Martin@Example.ORG ")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/inscription/envoye?flow=")
    done = browser.get(response.headers["Location"])
    assert done.status_code == 200
    assert "Vérifiez votre messagerie" in text(done) and NEW_EMAIL in text(done)

    user = load_user(app, svc, NEW_EMAIL)
    assert user is not None and user.email_verified is False
    assert user.phone_number == "+33612345678"
    assert (user.given_name, user.family_name) == ("Jeanne", "Martin")
    assert user.terms_version == svc.settings.registration.terms_version
    assert user.terms_accepted_at is not None
    assert user.password_hash and STRONG_PASSWORD not in user.password_hash
    # "Continuer" leads to the login page; the right password signs nobody in yet.
    proceed = browser.submit(done, "proceed", button=("proceed", "1"))
    assert proceed.status_code == 303
    assert proceed.headers["Location"] == "/login?return_to=/compte/"
    refused = browser.login(NEW_EMAIL, STRONG_PASSWORD)
    assert refused.status_code == 403
    assert "Confirmez votre adresse e-mail" in text(refused) and NEW_EMAIL in text(refused)
    assert browser.get("/compte/").status_code == 302
    assert browser.get("/compte/contact/telephone").status_code == 302
    assert "login.failure" in audit_types()


def test_the_link_confirms_the_address_and_continues_the_registration(
        app, svc, browser, outbox, audit_types):
    register(browser)
    (message,) = outbox(to=NEW_EMAIL)
    assert message["subject"] == "Confirmez votre adresse e-mail"
    assert STRONG_PASSWORD not in message["text"] + message["html"]
    link = link_in(message)
    # Review 2026-12, finding 8: the code travels in the fragment, never to the server.
    path, _, fragment = link.partition("#")
    assert path == "http://127.0.0.1:5000/inscription/confirmer"
    code = fragment_values(link)["code"]
    assert re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){4}", code)
    assert code in message["text"]  # typed by hand without JavaScript

    # GET only shows the form (mail scanners follow links).
    page = browser.get(link)
    assert page.status_code == 200 and "Confirmer mon adresse e-mail" in text(page)
    assert 'data-fragment-field="code"' in text(page) and code not in text(page)
    assert load_user(app, svc, NEW_EMAIL).email_verified is False
    # In the browser that registered: signed in, and on where the registration went.
    confirmed = confirm(browser, link)
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/compte/"
    assert browser.get("/compte/").status_code == 200
    assert load_user(app, svc, NEW_EMAIL).email_verified is True
    assert {"registration.success", "email.confirmed"} <= set(audit_types())

    # The code is spent: a clear French page.
    replay = confirm(browser, link)
    assert replay.status_code == 400 and "déjà été utilisé" in text(replay)
    # Typed by hand, in lower case and without dashes, it is read the same.
    typed = browser.submit(browser.get("/inscription/confirmer"), "code",
                           {"code": code.replace("-", "").lower()},
                           button=("confirm_email", "1"))
    assert typed.status_code == 400 and "déjà été utilisé" in text(typed)


def test_the_owner_of_an_address_cancels_an_account_someone_else_created(
        app, svc, browser, new_browser, outbox, audit_types):
    register(browser)  # someone types Jeanne's address
    link = link_in(outbox(to=NEW_EMAIL)[0])
    assert "Vous n'avez pas créé de compte" in outbox(to=NEW_EMAIL)[0]["text"]
    owner = new_browser()
    page = owner.get(link)
    assert "Je n'ai pas créé ce compte" in text(page)
    cancelled = owner.submit(page, "code", fragment_values(link), button=("disown", "1"))
    assert cancelled.status_code == 200 and "Compte annulé" in text(cancelled)
    assert load_user(app, svc, NEW_EMAIL) is None
    assert "registration.disowned" in audit_types()
    # The address is free: its owner registers, and the creator's password is worthless.
    assert browser.login(NEW_EMAIL, STRONG_PASSWORD).status_code == 400
    assert register(owner, password="le vent souffle fort sur la baie ce soir",
                    password_confirm="le vent souffle fort sur la baie ce soir"
                    ).status_code == 303
    assert load_user(app, svc, NEW_EMAIL) is not None
    # A confirmed account cannot be cancelled this way.
    link = link_in(outbox(to=NEW_EMAIL)[-1])
    assert confirm(owner, link).status_code == 302
    assert load_user(app, svc, NEW_EMAIL).email_verified is True


def test_the_login_page_of_an_unconfirmed_account_sends_the_link_again(
        app, svc, browser, new_browser, outbox):
    register(browser)
    other = new_browser()
    refused = other.login(NEW_EMAIL, STRONG_PASSWORD)
    assert refused.status_code == 403
    too_soon = other.submit(refused, "resend", button=("resend", "1"))
    assert too_soon.status_code == 400 and "Patientez" in text(too_soon)
    with app.app_context():
        from idp.persistence.flows import load_flow, read_flow

        flow_id = re.search(r"flow=([0-9a-f-]{36})", text(refused)).group(1)
        flow = load_flow(svc.db.session, flow_id, "login", read_flow(svc.kv, flow_id).browser)
        flow.data = {**flow.data, "last_sent_at": 0}
        svc.db.session.commit()
        svc.db.session.remove()
    again = other.submit(refused, "resend", button=("resend", "1"))
    assert again.status_code == 200 and "envoyé à nouveau" in text(again)
    assert len(outbox(to=NEW_EMAIL)) == 2
    # The new link confirms in this browser, which did not register: no sign-in there.
    confirmed = confirm(other, link_in(outbox(to=NEW_EMAIL)[-1]))
    assert confirmed.status_code == 200 and "Adresse e-mail confirmée" in text(confirmed)
    assert other.get("/compte/").status_code == 302
    assert other.login(NEW_EMAIL, STRONG_PASSWORD).status_code == 302


def test_a_link_sent_before_codes_moved_to_the_fragment_still_confirms(app, svc, browser,
                                                                         new_browser):
    from idp.persistence import consumables

    register(browser)
    user = load_user(app, svc, NEW_EMAIL)
    with app.app_context():
        token = consumables.issue_bearer(svc.db.session, "email_confirmation", 3600,
                                         user_id=user.id, destination=f"email:{NEW_EMAIL}")
        svc.db.session.commit()
        svc.db.session.remove()
    other = new_browser()
    page = other.get(f"/inscription/confirmer/{token}")
    assert page.status_code == 200
    confirmed = other.submit(page, "code", button=("confirm_email", "1"))
    assert confirmed.status_code == 200 and "Adresse e-mail confirmée" in text(confirmed)


def test_confirmation_link_works_in_another_browser(app, svc, browser, new_browser, outbox):
    register(browser)
    link = link_in(outbox(to=NEW_EMAIL)[0])
    other = new_browser()
    assert confirm(other, link).status_code == 200
    assert load_user(app, svc, NEW_EMAIL).email_verified is True
    assert other.get("/compte/").status_code == 302


def test_expired_and_unknown_confirmation_links(app, svc, browser, outbox):
    register(browser)
    link = link_in(outbox(to=NEW_EMAIL)[0])
    with app.app_context():
        svc.db.session.execute(update(Consumable).where(Consumable.kind == "email_confirmation")
                               .values(expires_at=dt.datetime.now(dt.timezone.utc)
                                       - dt.timedelta(seconds=1)))
        svc.db.session.commit()
        svc.db.session.remove()
    page = confirm(browser, link)
    assert page.status_code == 400 and "a expiré" in text(page)
    assert load_user(app, svc, NEW_EMAIL).email_verified is False
    form = browser.get("/inscription/confirmer")
    unknown = browser.submit(form, "code", {"code": "AAAA-BBBB-CCCC-DDDD-EEEE"},
                             button=("confirm_email", "1"))
    assert unknown.status_code == 400 and "n'est pas valide" in text(unknown)
    empty = browser.submit(form, "code", {"code": ""}, button=("confirm_email", "1"))
    assert empty.status_code == 400 and 'href="#code"' in text(empty)
    long = browser.submit(form, "code", {"code": "x" * 600}, button=("confirm_email", "1"))
    assert long.status_code == 400
    assert browser.get("/inscription/confirmer/" + "x" * 600).status_code == 200


def test_existing_email_gets_the_same_answer_and_the_owner_is_told(
        app, svc, user, browser, new_browser, outbox, audit_types):
    taken = register(browser, email=user.email.upper())
    other = new_browser()
    fresh = register(other)
    assert taken.status_code == fresh.status_code == 303
    assert re.sub(r"flow=[0-9a-f-]+", "", taken.headers["Location"]) == \
        re.sub(r"flow=[0-9a-f-]+", "", fresh.headers["Location"])
    assert ("Set-Cookie" in taken.headers) == ("Set-Cookie" in fresh.headers)
    taken_page = browser.get(taken.headers["Location"])
    fresh_page = other.get(fresh.headers["Location"])
    assert taken_page.status_code == fresh_page.status_code == 200
    assert normalised(taken_page, user.email) == normalised(fresh_page, NEW_EMAIL)

    # No second account, the owner's account untouched, the owner told by e-mail.
    with app.app_context():
        assert svc.db.session.scalar(select(User).where(User.email == user.email)).id == user.id
        assert len(list(svc.db.session.scalars(select(User)))) == 2
        svc.db.session.remove()
    (message,) = outbox(to=user.email)
    assert message["subject"] == "Vous avez déjà un compte"
    assert "/login" in message["text"] and STRONG_PASSWORD not in message["text"]
    assert "registration.existing_email" in audit_types()
    # "Continuer" answers the same, and signs in neither (review 2026-12, finding 3).
    taken_next = browser.submit(taken_page, "proceed", button=("proceed", "1"))
    fresh_next = other.submit(fresh_page, "proceed", button=("proceed", "1"))
    assert taken_next.status_code == fresh_next.status_code == 303
    assert taken_next.headers["Location"] == fresh_next.headers["Location"]
    assert ("Set-Cookie" in taken_next.headers) == ("Set-Cookie" in fresh_next.headers)
    assert browser.get("/compte/").status_code == 302
    assert other.get("/compte/").status_code == 302


@pytest.mark.parametrize("overrides, field, message", [
    ({"captcha_payload": None}, "captcha_answer", "vérification anti-robot"),
    ({"captcha_payload": "wrong"}, "captcha_answer", "vérification anti-robot"),
    ({"accept_terms": None}, "accept_terms", "conditions générales"),
    ({"phone": "12"}, "phone", "numéro de téléphone"),
    ({"phone": "not a phone"}, "phone", "numéro de téléphone"),
    ({"phone": ""}, "phone", "numéro de téléphone"),
    ({"password": "motdepasse", "password_confirm": "motdepasse"}, "password",
     "au moins 12 caractères"),
    ({"password": "qwertyuiop123", "password_confirm": "qwertyuiop123"}, "password",
     "les plus courants"),
    ({"password": "jeanne martin 2026 !", "password_confirm": "jeanne martin 2026 !"},
     "password", "votre nom"),
    ({"password_confirm": STRONG_PASSWORD + "x"}, "password_confirm", "pas identiques"),
    ({"email": "pas-une-adresse"}, "email", "adresse e-mail valide"),
    ({"email": ""}, "email", "adresse e-mail"),
    ({"given_name": " "}, "given_name", "prénom"),
])
def test_invalid_input_rerenders_the_form_in_french(app, svc, browser, outbox, overrides,
                                                   field, message):
    response = register(browser, **overrides)
    assert response.status_code == 400
    html = text(response)
    assert "Le formulaire contient des erreurs" in html
    assert f'href="#{field}"' in html
    assert message.lower() in html.lower()
    assert STRONG_PASSWORD not in html  # passwords are never sent back
    assert load_user(app, svc, NEW_EMAIL) is None
    assert outbox() == []
    # Corrected, the same flow goes through.
    fixed = post_form(browser, response, "given_name", registration_values())
    assert fixed.status_code == 303


def test_phone_is_optional_when_configured(make_app):
    app = make_app(registration={"captcha_backend": "test", "phone_required": False})
    from tests.support import Browser

    browser = Browser(app.test_client())
    page = browser.get("/inscription")
    response = post_form(browser, page, "given_name",
                         registration_values(email="sans.telephone@example.org", phone=""))
    assert response.status_code == 303


def test_overseas_number_with_default_region(make_app):
    app = make_app(registration={"captcha_backend": "test"}, messaging={"default_region": "NC"})
    from tests.support import Browser

    browser = Browser(app.test_client())
    page = browser.get("/inscription")
    response = post_form(browser, page, "given_name",
                         registration_values(email="caledonie@example.org", phone="99 99 99"))
    assert response.status_code == 303
    with app.app_context():
        svc = app.extensions["idp"]
        user = svc.db.session.scalar(select(User).where(User.email == "caledonie@example.org"))
        assert user.phone_number == "+687999999"
        svc.db.session.remove()


def test_registration_inside_an_authorization_request_lands_at_the_client(
        app, svc, browser, rp, outbox):
    login, verifier, query = browser.authorize(rp)
    login = browser.get(login.headers["Location"])
    assert login.status_code == 200
    page = browser.get(href(login, "Créer un compte"))
    assert page.status_code == 200
    created = post_form(browser, page, "given_name", registration_values())
    assert created.status_code == 303
    done = browser.get(created.headers["Location"])
    proceed = browser.submit(done, "proceed", button=("proceed", "1"))
    assert proceed.status_code == 303
    assert "return_to=/authorize/resume/" in proceed.headers["Location"]
    # Confirming in this browser answers the waiting authorization request.
    location = browser.follow_to_client(confirm(browser, link_in(outbox(to=NEW_EMAIL)[0])))
    assert location.startswith(rp.redirect_uri)
    result = query_of(location)
    assert result["state"] == query["state"] and result["code"]
    token = browser.post("/token", headers=basic_auth(rp), data={
        "grant_type": "authorization_code", "code": result["code"],
        "redirect_uri": rp.redirect_uri, "code_verifier": verifier})
    assert token.status_code == 200, token.json
    assert token.json["id_token"]


def test_a_failed_send_is_offered_again_never_a_500(app, svc, browser, outbox, monkeypatch):
    monkeypatch.setattr(svc.messenger, "send_email", lambda message, purpose=None: False)
    response = register(browser)
    assert response.status_code == 303
    done = browser.get(response.headers["Location"])
    html = text(done)
    assert done.status_code == 200
    assert "n'a pas pu être envoyé" in html and "Renvoyer le message" in html
    monkeypatch.undo()
    again = browser.submit(done, "resend", button=("resend", "1"))
    assert again.status_code == 200 and "envoyé à nouveau" in text(again)
    (message,) = outbox(to=NEW_EMAIL)
    assert "/inscription/confirmer#code=" in message["text"]
    # The resend interval applies once a message went out.
    too_soon = browser.submit(again, "resend", button=("resend", "1"))
    assert too_soon.status_code == 400 and "Patientez" in text(too_soon)


def test_bad_requests_never_make_a_500(browser):
    assert browser.get("/inscription?flow=nope").status_code == 302
    assert browser.post("/inscription?flow=" + "a" * 100, data={}).status_code == 400  # CSRF
    page = browser.get("/inscription")
    form_action = re.search(r'action="([^"]+)"', text(page)).group(1)
    assert browser.post(form_action.replace("&amp;", "&"), data={}).status_code == 400
    assert browser.post(form_action.replace("&amp;", "&"),
                        data={"email": ["a", "b"], "accept_terms": "x" * 5000}).status_code == 400
    assert browser.get("/inscription/envoye").status_code == 302
    assert browser.post("/inscription/renvoyer", data={}).status_code == 400
    assert browser.post("/inscription/continuer", data={}).status_code == 400


def test_signed_in_user_is_sent_on(browser, user):
    browser.login(user.email)
    response = browser.get("/inscription")
    assert response.status_code == 302 and response.headers["Location"] == "/compte/"


def test_an_account_already_used_cannot_be_cancelled_from_the_link(app, svc, user_factory,
                                                                    browser):
    """One created before sign-in waited for confirmation may hold data: its owner takes
    it back through "mot de passe perdu" instead."""
    from idp.identity import sso
    from idp.persistence import consumables

    person = user_factory(email=NEW_EMAIL, email_verified=False)
    with app.app_context():
        db = svc.db.session
        sso.start(db, db.get(User, person.id), amr=["pwd"], acr="eidas1", lifetime=3600,
                  ip_address=None, user_agent="")
        consumables.issue_bearer(db, "email_confirmation", 3600, value="A" * 20,
                                 user_id=person.id, destination=f"email:{NEW_EMAIL}")
        db.commit()
        db.remove()
    page = browser.get("/inscription/confirmer")
    refused = browser.submit(page, "code", {"code": "AAAA-AAAA-AAAA-AAAA-AAAA"},
                             button=("disown", "1"))
    assert refused.status_code == 400 and "Mot de passe perdu" in text(refused)
    assert load_user(app, svc, NEW_EMAIL) is not None
