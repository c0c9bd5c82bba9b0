"""Sécurité: password change and login e-mail change, behind a recent password."""

from __future__ import annotations

from sqlalchemy import select, update

from idp.persistence.models import AuditEvent, Consumable, utcnow
from tests.account.conftest import age_sessions, load_user, sessions_of, text
from tests.support import PASSWORD, path_of

NEW_PASSWORD = "une phrase de passe bien longue 2026"


def change_password(browser, current=PASSWORD, new=NEW_PASSWORD, confirm=None):
    page = browser.get("/compte/securite/mot-de-passe")
    assert page.status_code == 200, page.status_code
    return browser.submit(page, "current_password", {
        "current_password": current, "new_password": new,
        "confirm_password": new if confirm is None else confirm})


def test_change_password_ends_other_sessions_and_notifies(logged_in, new_browser, user, svc,
                                                          outbox, app):
    other = new_browser()
    other.login(user.email)
    assert other.get("/compte/").status_code == 200
    response = change_password(logged_in)
    assert response.status_code == 302 and response.headers["Location"].endswith("/securite")
    saved = load_user(svc, user.id)
    assert svc.passwords.verify(saved.password_hash, NEW_PASSWORD)
    assert saved.password_changed_at is not None
    # this browser stays signed in, the other one is out
    assert logged_in.get("/compte/").status_code == 200
    assert other.get("/compte/").status_code == 302
    ended = [s for s in sessions_of(svc, user.id) if s.ended_at is not None]
    assert [s.ended_reason for s in ended] == ["password_changed"]
    notice = outbox.last(user.email)
    assert "mot de passe a été modifié" in notice["subject"]
    assert NEW_PASSWORD not in notice["text"]
    with app.app_context():
        assert svc.db.session.scalar(select(AuditEvent).where(
            AuditEvent.type == "password.changed", AuditEvent.user_id == user.id))
    # the new password works, the old one does not
    fresh = new_browser()
    assert fresh.login(user.email, PASSWORD).status_code != 302
    assert new_browser().login(user.email, NEW_PASSWORD).status_code == 302


def test_wrong_current_password(logged_in, user, svc, outbox):
    response = change_password(logged_in, current="not my password at all")
    assert response.status_code == 400
    html = text(response)
    assert "Votre mot de passe actuel est incorrect." in html
    assert 'href="#current_password"' in html
    assert svc.passwords.verify(load_user(svc, user.id).password_hash, PASSWORD)
    assert outbox.all() == []


def test_weak_or_mismatched_new_password(logged_in, user, svc):
    response = change_password(logged_in, new="court")
    assert response.status_code == 400 and "au moins 12 caractères" in text(response)
    response = change_password(logged_in, new="password1234")
    assert response.status_code == 400 and "les plus courants" in text(response)
    response = change_password(logged_in, confirm="une autre phrase de passe 2026")
    assert response.status_code == 400 and "pas identiques" in text(response)
    assert svc.passwords.verify(load_user(svc, user.id).password_hash, PASSWORD)


def test_password_change_needs_recent_authentication(logged_in, user, svc):
    age_sessions(svc, user.id, minutes=11)
    response = logged_in.get("/compte/securite/mot-de-passe")
    assert response.status_code == 302
    assert "/login/reauth" in response.headers["Location"]
    # a POST made with an old authentication is refused as well
    response = logged_in.post("/compte/securite/mot-de-passe", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD})
    assert response.status_code in (302, 400)
    assert svc.passwords.verify(load_user(svc, user.id).password_hash, PASSWORD)
    # typing the password again gives access back
    page = logged_in.get(response.headers["Location"]) if response.status_code == 302 else \
        logged_in.get("/login/reauth?return_to=/compte/securite/mot-de-passe")
    back = logged_in.submit(page, "password", {"password": PASSWORD})
    assert back.status_code == 302
    assert logged_in.get(path_of(back.headers["Location"])).status_code == 200
    assert change_password(logged_in).status_code == 302


def test_recent_sessions_pass_without_reauth(logged_in, user, svc):
    age_sessions(svc, user.id, minutes=9)
    assert logged_in.get("/compte/securite/mot-de-passe").status_code == 200


def fragment_code(link: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(link).fragment)["code"][0]


def test_change_login_email_with_confirmation_link(logged_in, new_browser, user, svc, outbox):
    page = logged_in.get("/compte/securite/identifiant")
    response = logged_in.submit(page, "new_email", {"new_email": "Marie.Nouvelle@Example.org"})
    assert response.status_code == 302
    assert "marie.nouvelle@example.org" in text(logged_in.get(response.headers["Location"]))
    # nothing changes until the link is followed
    assert load_user(svc, user.id).email == user.email
    link = outbox.link("marie.nouvelle@example.org")
    # Review 2026-12, finding 8: the code is in the fragment, which no log sees.
    path, _, fragment = link.partition("#")
    assert path.endswith("/compte/identifiant/confirmer") and fragment.startswith("code=")
    code = fragment_code(link)
    assert code in outbox.last("marie.nouvelle@example.org")["text"]
    page = logged_in.get(link)
    assert page.status_code == 200 and "marie.nouvelle@example.org" in text(page)
    assert code not in text(page) and 'data-fragment-field="code"' in text(page)
    assert load_user(svc, user.id).email == user.email  # a GET changes nothing
    response = logged_in.submit(page, "code", {"code": code})
    assert response.status_code == 302
    saved = load_user(svc, user.id)
    assert saved.email == "marie.nouvelle@example.org" and saved.email_verified
    notice = outbox.last(user.email)
    assert "adresse de connexion" in notice["subject"]
    # the link is single-use
    again = logged_in.submit(page, "code", {"code": code})
    assert again.status_code == 400 and "déjà été utilisé" in text(again)
    # login with the new address only
    assert new_browser().login("marie.nouvelle@example.org").status_code == 302
    assert new_browser().login(user.email).status_code != 302


def test_login_email_change_refuses_bad_input(logged_in, user, outbox):
    page = logged_in.get("/compte/securite/identifiant")
    response = logged_in.submit(page, "new_email", {"new_email": "pas une adresse"})
    assert response.status_code == 400 and "adresse e-mail valide" in text(response)
    response = logged_in.submit(page, "new_email", {"new_email": user.email.upper()})
    assert response.status_code == 400 and "déjà votre adresse" in text(response)
    assert outbox.all() == []


def test_login_email_taken_is_not_revealed(logged_in, user_factory, outbox):
    other = user_factory(email="deja.pris@example.org")
    page = logged_in.get("/compte/securite/identifiant")
    response = logged_in.submit(page, "new_email", {"new_email": other.email})
    assert response.status_code == 302  # same answer as for a free address
    assert outbox.all() == []


def test_login_email_link_expired_or_foreign(logged_in, new_browser, user, user_factory, svc,
                                             outbox):
    page = logged_in.get("/compte/securite/identifiant")
    logged_in.submit(page, "new_email", {"new_email": "marie.nouvelle@example.org"})
    link = outbox.link("marie.nouvelle@example.org")
    code = fragment_code(link)
    stranger = user_factory()
    other = new_browser()
    other.login(stranger.email)
    response = other.submit(other.get(link), "code", {"code": code})
    assert response.status_code == 400 and "autre compte" in text(response)
    with svc.db.transaction() as session:
        session.execute(update(Consumable).where(Consumable.user_id == user.id)
                        .values(expires_at=utcnow()))
    response = logged_in.submit(logged_in.get(link), "code", {"code": code})
    assert response.status_code == 400 and "expiré" in text(response)
    unknown = logged_in.submit(logged_in.get(link), "code", {"code": "nope"})
    assert unknown.status_code == 400 and "pas valable" in text(unknown)
    assert load_user(svc, user.id).email == user.email


def test_login_email_change_needs_recent_authentication(logged_in, user, svc):
    age_sessions(svc, user.id)
    response = logged_in.get("/compte/securite/identifiant")
    assert response.status_code == 302 and "/login/reauth" in response.headers["Location"]


def test_changing_the_phone_needs_a_recent_authentication(logged_in, user, svc):
    age_sessions(svc, user.id, minutes=11)
    for path in ("/compte/contact/telephone", "/compte/contact/courriel"):
        response = logged_in.get(path)
        assert response.status_code == 302 and "/login/reauth" in response.headers["Location"]
    age_sessions(svc, user.id, minutes=2)
    assert logged_in.get("/compte/contact/telephone").status_code == 200


def test_a_login_email_link_sent_before_codes_moved_to_the_fragment_still_works(
        logged_in, user, svc, app):
    from idp.persistence import consumables

    with app.app_context():
        token = consumables.issue_bearer(
            svc.db.session, "login_email_change", 3600, user_id=user.id,
            destination="email:marie.ancienne@example.org",
            data={"new_email": "marie.ancienne@example.org"})
        svc.db.session.commit()
        svc.db.session.remove()
    page = logged_in.get(f"/compte/identifiant/confirmer?jeton={token}")
    assert page.status_code == 200 and f'value="{token}"' in text(page)
    assert logged_in.submit(page, "code").status_code == 302
    assert load_user(svc, user.id).email == "marie.ancienne@example.org"
