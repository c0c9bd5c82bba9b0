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


def test_demo_script_refuses_an_unknown_preset():
    import subprocess
    from idp.config import PROJECT_ROOT
    result = subprocess.run(["bash", "scripts/demo", "--preset", "atlantide"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "no preset atlantide" in result.stderr and "province-sud" in result.stderr


@pytest.mark.live_server
def test_idp_demo_with_the_province_sud_preset(live, tmp_path):
    from idp.config import PROJECT_ROOT
    app_port, news_port = free_port(), free_port()
    env = dict(live.env, IDP_CONFIG=str(PROJECT_ROOT / "config/examples/province-sud.toml"))
    demo = LiveProcess("idp demo", [sys.executable, "-c", "from idp.cli import main; main()",
                                    "demo", "--port", str(live.port),
                                    "--client-port", str(app_port),
                                    "--news-port", str(news_port)],
                       env, tmp_path / "demo.log", live.issuer,
                       "/.well-known/openid-configuration")
    try:
        page = requests.get(live.issuer + "/mot-de-passe-perdu/assistance", timeout=10).text
        assert "La Province Sud" in page and "l'assistance de la Province Sud" in page
        assert "assistance.compte@province-sud.nc" in page
        legal = requests.get(live.issuer + "/donnees-personnelles", timeout=10).text
        assert "Informatique et Libertés" in legal and "Province Sud, représentée" in legal
        # The démarche app speaks of the Province and of New Caledonia: the demo citizen
        # lives in Nouméa (a three-line address, a local number), rents are in XPF.
        password = re.search(r"Password\s+:\s+(\S+)", demo.log_tail()).group(1)
        app_url = f"http://127.0.0.1:{app_port}"
        browser = WebBrowser()
        page = browser.drive(browser.get(app_url + "/connexion"), email=DEMO_EMAIL,
                             password=password)
        assert "Province Sud – Démarches en ligne" in page.text
        started = browser.submit(browser.get(app_url + "/demarches/aide-logement"), "start")
        page = browser.get(app_url + started.headers["Location"])
        fields = form_with(page.text, "nom")["fields"]
        assert fields["telephone"] == "71 22 33"
        assert fields["adresse"] == "12 rue Jean Jaurès\nQuartier Latin\nBP 1234"
        assert "francs CFP (XPF)" in page.text
        news = requests.get(f"http://127.0.0.1:{news_port}/", timeout=10).text
        assert "Actualités de la Province Sud" in news
    finally:
        demo.stop()
