"""``idp demo``: its idempotent setup, its issuer check, and the command for real."""

from __future__ import annotations

import re
import sys

import pytest
import requests

from idp.demo import CLIENT_ID, DEMO_EMAIL, register_client, reset_demo_user, run_demo
from idp.identity.users import authenticate_password, find_by_email
from idp.persistence.models import Client
from tests.e2e.conftest import LiveProcess, WebBrowser, form_with, free_port


def test_demo_setup_is_idempotent_and_rotates_secrets(app, svc):
    with app.app_context():
        session = svc.db.session
        first_secret = register_client(svc, 5001)
        second_secret = register_client(svc, 5002)
        client = session.get(Client, CLIENT_ID)
        assert client.check_client_secret(second_secret)
        assert not client.check_client_secret(first_secret)
        assert client.redirect_uris == ["http://127.0.0.1:5002/callback",
                                        "http://127.0.0.1:5002/porte-documents/retour"]
        assert client.subject_type == "pairwise"
        assert {"requests:write", "notifications:write", "documents:read",
                "relations"} <= set(client.scope.split())
        assert "client_credentials" in client.grant_types
        assert client.post_logout_redirect_uris == ["http://127.0.0.1:5002/"]
        assert client.require_consent and client.token_endpoint_auth_method == \
            "client_secret_basic"

        first_password = reset_demo_user(svc)
        second_password = reset_demo_user(svc)
        assert first_password != second_password
        assert authenticate_password(session, svc.passwords, DEMO_EMAIL, first_password) is None
        user = authenticate_password(session, svc.passwords, DEMO_EMAIL, second_password)
        assert user is not None and user.email_verified
        assert (user.given_name, user.family_name) == ("Camille", "Martin")
        assert user.phone_number == "+33612345678"
        assert user.postal_code and user.locality and user.street_address
        assert find_by_email(session, DEMO_EMAIL).id == user.id


def test_demo_refuses_an_issuer_it_does_not_serve(app, capsys):
    assert run_demo(app, 5050, 5051) == 2  # the test app's issuer is port 5000
    assert "IDP_ISSUER=http://127.0.0.1:5050" in capsys.readouterr().err


@pytest.mark.live_server
def test_idp_demo_command_serves_both_apps(live, tmp_path):
    app_port, news_port = free_port(), free_port()
    demo = LiveProcess("idp demo", [sys.executable, "-c", "from idp.cli import main; main()",
                                    "demo", "--port", str(live.port),
                                    "--client-port", str(app_port),
                                    "--news-port", str(news_port)],
                       live.env, tmp_path / "demo.log", live.issuer,
                       "/.well-known/openid-configuration")
    try:
        output = demo.log_tail()
        password = re.search(r"Password\s+:\s+(\S+)", output).group(1)
        assert DEMO_EMAIL in output and f"http://127.0.0.1:{app_port}/" in output
        assert f"http://127.0.0.1:{news_port}/" in output
        browser = WebBrowser()
        app_url = f"http://127.0.0.1:{app_port}"
        page = browser.drive(browser.get(app_url + "/connexion"), email=DEMO_EMAIL,
                             password=password)
        assert page.url == app_url + "/", page.text[:500]
        assert any("/authorize/resume/" in u for u in browser.visited), "no consent screen"
        start = browser.get(app_url + "/demarches/aide-logement")
        started = browser.submit(start, "start")
        page = browser.get(app_url + started.headers["Location"])
        fields = form_with(page.text, "nom")["fields"]
        assert (fields["prenom"], fields["nom"]) == ("Camille", "Martin")
        assert fields["telephone"] == "06 12 34 56 78"
    finally:
        demo.stop()  # SIGTERM: the demo stops the sample app too
    for port in (app_port, news_port):
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=2)
