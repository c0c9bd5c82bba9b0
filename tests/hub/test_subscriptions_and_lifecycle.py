"""Subscriptions read by a publishing app; the account's deletion and export with the
hub's data; the OpenAPI document."""

from __future__ import annotations

import io
import json

import pytest

from idp.persistence.models import HubEvent, HubRequest, User, WalletDocument
from tests.support import PASSWORD, csrf_token


def subscribe(browser, **choices):
    token = csrf_token(browser.get("/compte/abonnements").get_data(as_text=True))
    data = {"csrf_token": token, **{f"theme-{k}": v for k, v in choices.items()}}
    return browser.post("/compte/abonnements", data=data)


def test_a_publishing_app_reads_the_subscribers_of_a_theme(app, svc, api, themes, citizen,
                                                          make_demarche, browser,
                                                          user_factory, new_browser):
    user, _sub = citizen
    page = browser.get("/compte/abonnements").get_data(as_text=True)
    assert "Offres d&#39;emploi" in page and "Enquêtes publiques" in page
    assert subscribe(browser, **{"offres-emploi": "email", "actualites": "email"}) \
        .status_code == 302
    other = user_factory(phone_number="+33698765432", phone_number_verified=True)
    other_browser = new_browser()
    other_browser.login(other.email)
    subscribe(other_browser, **{"offres-emploi": "sms"})

    publisher = make_demarche(name="Actualités", scopes=["subscriptions:read"],
                              host="actualites.example.org")
    themes_list = api("GET", "/api/themes", publisher.token).get_json()["themes"]
    assert [t["id"] for t in themes_list][:2] == ["actualites", "evenements"]
    response = api("GET", "/api/themes/offres-emploi/subscribers", publisher.token)
    assert response.status_code == 200
    subscribers = response.get_json()["subscribers"]
    by_channel = {s["channel"]: s for s in subscribers}
    assert by_channel["email"]["email"] == user.email
    assert by_channel["sms"]["phone_number"] == "+33698765432"
    assert "email" not in by_channel["sms"]
    assert all(s["sub"] not in (user.id, other.id) for s in subscribers)  # pairwise
    assert response.get_json()["next_cursor"] is None

    # The signed link of the message unsubscribes, after a confirmation.
    link = by_channel["email"]["unsubscribe_url"]
    anonymous = new_browser()
    confirm = anonymous.get(link)
    assert confirm.status_code == 200 and "Offres d&#39;emploi" in confirm.get_data(as_text=True)
    done = anonymous.post(link, data={"csrf_token": csrf_token(confirm.get_data(as_text=True))})
    assert "Vous êtes désabonné" in done.get_data(as_text=True)
    after = api("GET", "/api/themes/offres-emploi/subscribers", publisher.token).get_json()
    assert [s["channel"] for s in after["subscribers"]] == ["sms"]
    still = api("GET", "/api/themes/actualites/subscribers", publisher.token).get_json()
    assert len(still["subscribers"]) == 1


def test_a_forged_unsubscribe_link_is_refused(new_browser, themes):
    response = new_browser().get("/compte/abonnements/desabonner/eyJmYWtlIjoxfQ.forged")
    assert response.status_code == 404
    assert "pas valide" in response.get_data(as_text=True)


def test_subscribers_need_the_scope_and_a_known_theme(api, themes, demarche, make_demarche):
    response = api("GET", "/api/themes/actualites/subscribers",
                   make_demarche(name="x", scopes=["requests:write"], host="x.example.org").token)
    assert response.status_code == 403
    assert api("GET", "/api/themes/nope/subscribers", demarche.token).status_code == 404


def test_a_disabled_user_is_no_subscriber_and_unknown_to_apps(app, svc, api, themes, citizen,
                                                              demarche, browser):
    user, sub = citizen
    subscribe(browser, actualites="email")
    with app.app_context():
        svc.db.session.get(User, user.id).disabled = True
        svc.db.session.commit()
    assert api("GET", "/api/themes/actualites/subscribers", demarche.token) \
        .get_json()["subscribers"] == []
    response = api("POST", "/api/notifications", demarche.token,
                   json={"sub": sub, "title": "x"})
    assert response.status_code == 401 or response.get_json()["error"] == "unknown_user"


def test_deleting_the_account_deletes_the_hub_data_and_tells_the_apps(
        app, svc, api, themes, citizen, demarche, browser, tmp_path):
    user, sub = citizen
    created = api("POST", "/api/requests", demarche.token, json={
        "sub": sub, "number": "N-1", "title": "Aide", "service": "Logement"}).get_json()
    api("POST", f"/api/requests/{created['id']}/messages", demarche.token, json={"body": "Bonjour"})
    api("POST", "/api/notifications", demarche.token, json={"sub": sub, "title": "Info"})
    subscribe(browser, actualites="email")
    token = csrf_token(browser.get("/compte/porte-documents").get_data(as_text=True))
    browser.post("/compte/porte-documents", content_type="multipart/form-data", data={
        "csrf_token": token, "name": "Pièce", "document_date": "",
        "file": (io.BytesIO(b"%PDF-1.4 test"), "a.pdf")})

    export = browser.get("/compte/confidentialite/export")
    if export.status_code != 200:  # a recent sign-in is asked for
        page = browser.get(export.headers["Location"])
        browser.submit(page, "password", {"password": PASSWORD})
        export = browser.get("/compte/confidentialite/export")
    data = json.loads(export.data)
    assert data["requests"][0]["number"] == "N-1"
    assert data["requests"][0]["messages"][0]["body"] == "Bonjour"
    assert data["notifications"][0]["title"] == "Info"
    assert data["documents"][0]["name"] == "Pièce"
    assert data["subscriptions"][0]["theme"] == "actualites"
    assert data["notification_preferences"]["requests"]["email"] is True

    page = browser.get("/compte/supprimer")
    deleted = browser.post("/compte/supprimer", data={"csrf_token": csrf_token(page.data),
                                                      "confirm": "y"})
    assert deleted.status_code == 200 and "a été supprimé" in deleted.get_data(as_text=True)
    with app.app_context():
        db = svc.db.session
        assert db.get(User, user.id) is None
        assert db.query(HubRequest).count() == 0 and db.query(WalletDocument).count() == 0
        assert db.query(HubEvent).one().subject == sub
    assert not [p for p in (tmp_path / "wallet").rglob("*") if p.is_file()]

    events = api("GET", "/api/events", demarche.token).get_json()
    assert [(e["type"], e["sub"]) for e in events["events"]] == [("user.deleted", sub)]
    assert api("GET", f"/api/events?after={events['last_id']}", demarche.token) \
        .get_json()["events"] == []
    refused = api("POST", "/api/requests", demarche.token, json={
        "sub": sub, "number": "N-2", "title": "Aide", "service": "Logement"})
    assert refused.status_code == 404 and refused.get_json()["error"] == "unknown_user"
    assert api("GET", f"/api/requests/{created['id']}", demarche.token).status_code == 404


def test_events_are_per_app(api, demarche, make_demarche):
    other = make_demarche(name="x", host="x.example.org")
    assert api("GET", "/api/events", other.token).get_json() == {"events": [], "last_id": 0}
    for after in ("x", "-1", "9" * 30):
        assert api("GET", f"/api/events?after={after}", other.token).status_code == 400


def test_the_openapi_document_describes_every_route(app, api):
    response = api("GET", "/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = rule.rule.removeprefix("/api").replace("<", "{").replace(">", "}")
            served.update((path, m) for m in rule.methods - {"HEAD", "OPTIONS"})
    assert documented == served
    for item in document["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                for ref in json.dumps(operation).split('"$ref": "')[1:]:
                    name = ref.split('"')[0].rsplit("/", 1)[-1]
                    assert name in document["components"]["schemas"], name


def test_themes_are_configured_by_the_administration(app, svc):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from idp.cli import main

    def run(*args):
        return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))

    result = run("themes", "set", "marches-publics", "Marchés publics",
                 "--description", "Les consultations en cours", "--position", "1")
    assert result.exit_code == 0, result.output
    assert "marches-publics  Marchés publics  (active" in run("themes", "list").output
    run("themes", "set", "marches-publics", "Marchés publics", "--inactive")
    assert "(inactive" in run("themes", "list").output
    bad = run("themes", "set", "Pas Un Slug", "x")
    assert bad.exit_code != 0 and "lower-case" in bad.output
    purged = run("purge")
    assert '"document_grants": 0' in purged.output and '"hub_events": 0' in purged.output
