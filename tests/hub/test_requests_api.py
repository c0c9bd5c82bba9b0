"""Requests through the API: filed by the app for a user it knows, changed only by that
app, shown in "Mes demandes", answered by the citizen and read back by the app."""

from __future__ import annotations

import pytest

from idp.persistence.models import HubSubject
from tests.support import csrf_token

NEW = {"number": "AL-2026-0001", "title": "Demande d'aide au logement",
       "service": "Direction du logement", "expected_days": 30,
       "link": "https://demarche.example.org/demandes/AL-2026-0001"}


def file_request(api, demarche, sub, **changes):
    return api("POST", "/api/requests", demarche.token, json={"sub": sub, **NEW, **changes})


def test_an_app_files_a_request_that_the_citizen_sees(api, citizen, demarche, browser):
    user, sub = citizen
    response = file_request(api, demarche, sub)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["number"] == "AL-2026-0001" and body["status"] == "submitted"
    assert body["sub"] == sub and body["history"][0]["status"] == "submitted"
    assert response.headers["Location"].endswith(f"/api/requests/{body['id']}")
    assert "Set-Cookie" not in response.headers  # never a browser session on /api/

    page = browser.get("/compte/demandes").get_data(as_text=True)
    assert "AL-2026-0001" in page and "Demande d&#39;aide au logement" in page
    assert "Direction du logement" in page and "Déposée" in page and "30 jours" in page
    detail = browser.get(f"/compte/demandes/{body['id']}").get_data(as_text=True)
    assert "https://demarche.example.org/demandes/AL-2026-0001" in detail


def test_pairwise_subjects_are_resolved_and_remembered(app, svc, api, citizen, demarche):
    user, sub = citizen
    assert sub != user.id  # pairwise: not the user id
    assert file_request(api, demarche, sub).status_code == 201
    with app.app_context():
        remembered = svc.db.session.query(HubSubject).filter_by(subject=sub).one()
        assert remembered.user_id == user.id


def test_a_public_subject_is_the_user_id(api, user, browser, make_demarche, sign_in):
    public = make_demarche(subject_type="public")
    sub = sign_in(browser, user.email, public)
    assert sub == user.id
    assert file_request(api, public, sub).status_code == 201


def test_an_app_cannot_reach_a_user_who_never_signed_in_to_it(api, citizen, make_demarche,
                                                              user_factory):
    stranger = user_factory()
    other = make_demarche(name="Autre", subject_type="public", host="autre.example.org")
    # Knowing someone's id is not enough: they never signed in to this app.
    response = api("POST", "/api/requests", other.token,
                   json={"sub": stranger.id, **NEW, "link": ""})
    assert response.status_code == 404 and response.get_json()["error"] == "unknown_user"
    response = file_request(api, citizen and other, "made-up-subject", link="")
    assert response.status_code == 404


def test_the_scope_is_required(api, citizen, make_demarche, app_token, user, browser, sign_in):
    notifier = make_demarche(name="Notifications seulement", scopes=["notifications:write"],
                             host="notif.example.org")
    sub = sign_in(browser, user.email, notifier)
    response = file_request(api, notifier, sub, link="")
    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Basic abc"])
def test_a_call_without_a_valid_token_is_refused(api, header):
    headers = {"Authorization": header} if header else {}
    response = api("POST", "/api/requests", headers=headers, json={"sub": "x"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_a_revoked_token_is_refused(app, api, demarche, citizen):
    from tests.conftest import basic_auth

    revoked = app.test_client().post("/revoke", data={"token": demarche.token},
                                     headers=basic_auth(demarche.registered))
    assert revoked.status_code == 200
    assert file_request(api, demarche, citizen[1]).status_code == 401


def test_only_the_app_that_filed_a_request_may_change_it(api, citizen, demarche, user, browser,
                                                         make_demarche, sign_in):
    created = file_request(api, demarche, citizen[1]).get_json()
    other = make_demarche(name="Autre démarche", host="autre.example.org")
    sign_in(browser, user.email, other)
    for method, path, body in (
            ("PATCH", f"/api/requests/{created['id']}", {"status": "rejected"}),
            ("GET", f"/api/requests/{created['id']}", None),
            ("POST", f"/api/requests/{created['id']}/messages", {"body": "Bonjour"}),
            ("GET", f"/api/requests/{created['id']}/messages", None)):
        response = api(method, path, other.token, json=body)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["error"] == "forbidden"
    assert api("GET", f"/api/requests/{created['id']}", demarche.token) \
        .get_json()["status"] == "submitted"
    assert api("GET", "/api/requests", other.token).get_json()["requests"] == []


def test_a_status_change_goes_to_the_history(api, citizen, demarche, browser):
    created = file_request(api, demarche, citizen[1]).get_json()
    response = api("PATCH", f"/api/requests/{created['id']}", demarche.token,
                   json={"status": "awaiting_citizen",
                         "comment": "Il manque votre avis d'imposition."})
    assert response.status_code == 200
    history = response.get_json()["history"]
    assert [h["status"] for h in history] == ["submitted", "awaiting_citizen"]
    page = browser.get(f"/compte/demandes/{created['id']}").get_data(as_text=True)
    assert "En attente de compléments" in page and "avis d&#39;imposition" in page
    # The list filters by status.
    assert "AL-2026-0001" in browser.get("/compte/demandes?statut=awaiting_citizen") \
        .get_data(as_text=True)
    assert "AL-2026-0001" not in browser.get("/compte/demandes?statut=accepted") \
        .get_data(as_text=True)
    assert "AL-2026-0001" in browser.get("/compte/demandes?q=2026-0001").get_data(as_text=True)
    assert "AL-2026-0001" not in browser.get("/compte/demandes?q=permis").get_data(as_text=True)


@pytest.mark.parametrize("change,field", [
    ({"status": "lost"}, "status"),
    ({"number": ""}, "number"),
    ({"number": "x" * 65}, "number"),
    ({"title": None}, "title"),
    ({"title": "a\x07b"}, "title"),
    ({"expected_days": "30"}, "expected_days"),
    ({"expected_days": -1}, "expected_days"),
    ({"submitted_at": "yesterday"}, "submitted_at"),
    ({"submitted_at": "2026-01-01T10:00:00"}, "submitted_at"),
    ({"submitted_at": "0001-01-01T00:00:00+05:00"}, "submitted_at"),
    ({"submitted_at": "1850-01-01T00:00:00Z"}, "submitted_at"),
    ({"link": "https://evil.example.com/phish"}, "link"),
    ({"link": "javascript:alert(1)"}, "link"),
])
def test_bad_fields_are_refused_by_name(api, citizen, demarche, change, field):
    body = {"sub": citizen[1], **NEW, **change}
    if change.get("title", "") is None:
        del body["title"]
    response = api("POST", "/api/requests", demarche.token, json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert response.get_json()["error_description"].startswith(field)


def test_a_body_that_is_not_a_json_object_is_refused(api, demarche):
    for kw in ({"data": "not json", "content_type": "application/json"}, {"json": [1, 2]}):
        response = api("POST", "/api/requests", demarche.token, **kw)
        assert response.status_code == 400 and response.is_json


def test_a_number_is_filed_once(api, citizen, demarche):
    assert file_request(api, demarche, citizen[1]).status_code == 201
    again = file_request(api, demarche, citizen[1])
    assert again.status_code == 409 and again.get_json()["error"] == "conflict"


def test_messages_go_both_ways(api, citizen, demarche, browser):
    created = file_request(api, demarche, citizen[1]).get_json()
    posted = api("POST", f"/api/requests/{created['id']}/messages", demarche.token,
                 json={"body": "Merci d'envoyer votre avis d'imposition."})
    assert posted.status_code == 201
    index = browser.get("/compte/").get_data(as_text=True)
    assert "1</span> message non lu" in index
    detail = browser.get(f"/compte/demandes/{created['id']}")
    assert "avis d&#39;imposition" in detail.get_data(as_text=True)
    assert "0</span> messages non lus" in browser.get("/compte/").get_data(as_text=True)

    token = csrf_token(detail.get_data(as_text=True))
    path = f"/compte/demandes/{created['id']}"
    empty = browser.post(path, data={"csrf_token": token, "body": "  "})
    assert empty.status_code == 400 and "Écrivez votre message." in empty.get_data(as_text=True)
    sent = browser.post(path, data={"csrf_token": token,
                                    "body": "Le voici, envoyé par courrier."})
    assert sent.status_code == 302
    messages = api("GET", f"/api/requests/{created['id']}/messages", demarche.token) \
        .get_json()["messages"]
    assert [m["author"] for m in messages] == ["service", "citizen"]
    assert messages[1]["body"] == "Le voici, envoyé par courrier."
    again = api("GET", f"/api/requests/{created['id']}/messages", demarche.token).get_json()
    assert again["messages"][1]["read_at"] is not None  # read by the app


def test_a_citizen_cannot_open_another_users_request(api, citizen, demarche, new_browser,
                                                     user_factory):
    created = file_request(api, demarche, citizen[1]).get_json()
    other = user_factory()
    intruder = new_browser()
    intruder.login(other.email)
    assert intruder.get(f"/compte/demandes/{created['id']}").status_code == 404
    token = csrf_token(intruder.get("/compte/notifications").get_data(as_text=True))
    assert intruder.post(f"/compte/demandes/{created['id']}",
                         data={"csrf_token": token, "body": "x"}).status_code == 404
    assert "AL-2026-0001" not in intruder.get("/compte/demandes").get_data(as_text=True)


@pytest.mark.settings(hub={"api_per_client": "3/minute"})
def test_calls_are_limited_per_app(api, citizen, demarche, make_demarche):
    for _ in range(3):
        assert api("GET", "/api/requests", demarche.token).status_code == 200
    limited = api("GET", "/api/requests", demarche.token)
    assert limited.status_code == 429 and limited.get_json()["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    other = make_demarche(name="Autre", host="autre.example.org")
    assert api("GET", "/api/requests", other.token).status_code == 200  # per app


def test_unknown_api_paths_answer_json(api, demarche):
    response = api("GET", "/api/nothing-here", demarche.token)
    assert response.status_code == 404 and response.is_json
    response = api("DELETE", "/api/requests", demarche.token)
    assert response.status_code == 405 and response.is_json


def test_remember_records_a_pairwise_subject_once(app, svc, user, make_demarche):
    from idp.hub.subjects import remember, resolve
    from idp.persistence.models import Client, User

    demarche = make_demarche(host="logement.example.org")
    with app.app_context():
        db = svc.db.session
        client = db.get(Client, demarche.client_id)
        # Never signed in: the fallback finds nobody.
        assert resolve(db, client, "issued-sub", "salt") is None
        remember(db, client, user.id, "issued-sub")
        remember(db, client, user.id, "issued-sub")  # the same code path twice: no error
        db.commit()
        assert db.query(HubSubject).filter_by(subject="issued-sub").count() == 1
        assert resolve(db, client, "issued-sub", "salt").id == user.id
        db.get(User, user.id).disabled = True
        db.commit()
        assert resolve(db, client, "issued-sub", "salt") is None
        assert resolve(db, client, "x" * 300, "salt") is None
