"""The wallet: documents checked from their content and size, encrypted at rest (folder
or S3-compatible storage), read by an app only through the grant of the one document
the user picked for it, for a short time."""

from __future__ import annotations

import datetime as dt
import io
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from idp.hub import storage as hub_storage
from idp.hub.wallet import check_document, detect_kind, WalletError
from idp.persistence.models import DocumentGrant, WalletDocument
from tests.support import csrf_token

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
DWG = b"AC1032" + b"\x00" * 64


@pytest.mark.parametrize("data,kind", [(PNG, "png"), (PDF, "pdf"), (JPEG, "jpg"), (DWG, "dwg"),
                                       (b"AC1009" + b"\x00" * 10, "dwg"),
                                       (b"AC2000" + b"\x00" * 10, None), (b"AC10", None),
                                       (b"GIF89a....", None), (b"<html>", None),
                                       (b"MZ\x90\x00", None), (b"PK\x03\x04", None)])
def test_the_type_comes_from_the_content(data, kind):
    assert detect_kind(data) == kind


def test_size_and_emptiness_are_checked():
    with pytest.raises(WalletError, match="taille maximale de 1 ko"):
        check_document(PNG + b"\x00" * 1024, 1024)
    with pytest.raises(WalletError, match="vide"):
        check_document(b"", 1024)
    with pytest.raises(WalletError, match="PNG, PDF, JPEG ou DWG"):
        check_document(b"%!PS-Adobe", 1024)


def upload(browser, data: bytes, filename: str, name="Justificatif de domicile",
           date="14/03/2026", path="/compte/porte-documents", extra=None):
    token = csrf_token(browser.get("/compte/porte-documents").get_data(as_text=True))
    fields = {"csrf_token": token, "name": name, "document_date": date,
              "file": (io.BytesIO(data), filename), **(extra or {})}
    return browser.post(path, data=fields, content_type="multipart/form-data")


def test_a_user_adds_downloads_and_deletes_a_document(app, svc, browser, user, tmp_path):
    browser.login(user.email)
    response = upload(browser, PDF, "facture.pdf")
    assert response.status_code == 302
    page = browser.get("/compte/porte-documents").get_data(as_text=True)
    assert "Justificatif de domicile" in page and "PDF" in page and "14/03/2026" in page
    with app.app_context():
        document = svc.db.session.query(WalletDocument).one()
        document_id, key = document.id, document.storage_key
    stored = next((tmp_path / "wallet").rglob(key)).read_bytes()
    assert b"%PDF" not in stored and b"EOF" not in stored  # encrypted at rest
    download = browser.get(f"/compte/porte-documents/{document_id}")
    assert download.status_code == 200 and download.data == PDF
    assert download.mimetype == "application/pdf"
    assert download.headers["Cache-Control"] == "no-store"

    token = csrf_token(page)
    browser.post(f"/compte/porte-documents/{document_id}/supprimer", data={"csrf_token": token})
    assert '<p class="item-title">Justificatif de domicile' not in \
        browser.get("/compte/porte-documents").get_data(as_text=True)
    assert not list((tmp_path / "wallet").rglob(key))


@pytest.mark.parametrize("data,filename,message", [
    (b"this is text, not a picture", "photo.png", "pas au format PNG, PDF, JPEG ou DWG"),
    (b"MZ\x90\x00 an executable", "scan.pdf", "pas au format PNG, PDF, JPEG ou DWG"),
    (b"", "vide.jpg", "Le fichier est vide"),
])
def test_a_file_of_another_type_is_refused_in_french(browser, user, data, filename, message):
    browser.login(user.email)
    response = upload(browser, data, filename)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'href="#file"' in html  # linked from the error summary


@pytest.mark.settings(hub={"wallet_max_bytes": 2048})
def test_a_file_over_the_limit_is_refused_in_french(browser, user):
    browser.login(user.email)
    response = upload(browser, PNG + b"\x00" * 4096, "grand.png")
    assert response.status_code == 400
    assert "dépasse la taille maximale de 2 ko" in response.get_data(as_text=True)
    # Over the request limit as well: a page, not a crash.
    response = upload(browser, PNG + b"\x00" * 2 * 1024 * 1024, "immense.png")
    assert response.status_code == 413


def test_the_request_limit_lets_the_wallet_size_through(browser, user):
    browser.login(user.email)
    big = JPEG + b"\x00" * (3 * 1024 * 1024)  # over the app-wide 1 MiB
    assert upload(browser, big, "photo.jpg").status_code == 302


def test_a_name_is_required_and_the_date_checked(browser, user):
    browser.login(user.email)
    response = upload(browser, PNG, "a.png", name="", date="31/02/2026")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Donnez un nom au document." in html and "Saisissez une date valide" in html


@pytest.mark.settings(hub={"wallet_max_documents": 1})
def test_the_number_of_documents_is_limited(browser, user):
    browser.login(user.email)
    assert upload(browser, PNG, "a.png").status_code == 302
    response = upload(browser, PNG, "b.png")
    assert response.status_code == 400 and "le maximum" in response.get_data(as_text=True)


def test_another_users_document_is_out_of_reach(app, svc, browser, user, new_browser,
                                                user_factory):
    browser.login(user.email)
    upload(browser, PNG, "a.png")
    with app.app_context():
        document_id = svc.db.session.query(WalletDocument).one().id
    other = new_browser()
    other.login(user_factory().email)
    assert other.get(f"/compte/porte-documents/{document_id}").status_code == 404
    token = csrf_token(other.get("/compte/porte-documents").get_data(as_text=True))
    assert other.post(f"/compte/porte-documents/{document_id}/supprimer",
                      data={"csrf_token": token}).status_code == 404


# -- a document picked for an app --------------------------------------------------------
def pick(browser, demarche, decision="share", document_id=None, state="st-123"):
    query = {"client_id": demarche.client_id, "redirect_uri": demarche.registered.redirect_uri,
             "state": state, "purpose": "Justificatif de domicile"}
    page = browser.get("/compte/porte-documents/choisir", query_string=query)
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    data = {**query, "csrf_token": csrf_token(html), "decision": decision}
    if document_id:
        data["document"] = document_id
    return html, browser.post("/compte/porte-documents/choisir", data=data,
                              content_type="multipart/form-data")


def _grant_of(response) -> dict:
    assert response.status_code == 302, response.status_code
    location = response.headers["Location"]
    assert location.startswith("https://demarche.example.org/callback?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_an_app_reads_the_one_document_the_user_picked(app, svc, api, citizen, demarche,
                                                       browser):
    upload(browser, PNG, "carte.png", name="Carte d'identité")
    upload(browser, PDF, "avis.pdf", name="Avis d'imposition")
    with app.app_context():
        ids = {d.name: d.id for d in svc.db.session.query(WalletDocument)}
    html, response = pick(browser, demarche, document_id=ids["Avis d'imposition"])
    assert "Aide au logement" in html and "10 minutes" in html
    answer = _grant_of(response)
    assert answer["state"] == "st-123"
    grant = answer["grant"]

    described = api("POST", "/api/documents/describe", demarche.token, json={"grant": grant})
    assert described.status_code == 200
    assert described.get_json()["name"] == "Avis d'imposition"
    assert described.get_json()["type"] == "pdf"
    downloaded = api("POST", "/api/documents/download", demarche.token, json={"grant": grant})
    assert downloaded.status_code == 200 and downloaded.data == PDF
    assert downloaded.mimetype == "application/pdf"
    # No way to list the wallet.
    picked = ids["Avis d'imposition"]
    for path in ("/api/documents", f"/api/documents/{picked}"):
        assert api("GET", path, demarche.token).status_code in (404, 405)


def test_no_grant_without_the_users_choice(api, citizen, demarche, browser, app, svc):
    upload(browser, PNG, "carte.png")
    html, response = pick(browser, demarche, decision="cancel")
    answer = _grant_of(response)
    assert answer == {"error": "access_denied", "state": "st-123"}
    with app.app_context():
        assert svc.db.session.query(DocumentGrant).count() == 0
    refused = api("POST", "/api/documents/download", demarche.token,
                  json={"grant": "a" * 43})
    assert refused.status_code == 404 and refused.get_json()["error"] == "invalid_grant"


def test_another_users_document_cannot_be_granted(app, svc, citizen, demarche, browser,
                                                  new_browser, user_factory):
    other = new_browser()
    other.login(user_factory().email)
    upload(other, PNG, "a.png")
    with app.app_context():
        foreign = svc.db.session.query(WalletDocument).one().id
    html, response = pick(browser, demarche, document_id=foreign)
    assert response.status_code == 400
    assert "Choisissez un document" in response.get_data(as_text=True)
    with app.app_context():
        assert svc.db.session.query(DocumentGrant).count() == 0


def test_a_grant_is_for_its_app_only_and_expires(app, svc, api, citizen, demarche, browser,
                                                 make_demarche, user, sign_in):
    upload(browser, PNG, "carte.png")
    with app.app_context():
        document_id = svc.db.session.query(WalletDocument).one().id
    grant = _grant_of(pick(browser, demarche, document_id=document_id)[1])["grant"]
    other = make_demarche(name="Autre", host="autre.example.org")
    stolen = api("POST", "/api/documents/download", other.token, json={"grant": grant})
    assert stolen.status_code == 404 and stolen.get_json()["error"] == "invalid_grant"

    with app.app_context():
        svc.db.session.execute(update(DocumentGrant).values(
            expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
        svc.db.session.commit()
    expired = api("POST", "/api/documents/download", demarche.token, json={"grant": grant})
    assert expired.status_code == 410 and expired.get_json()["error"] == "expired_grant"


def test_documents_read_needs_its_scope(app, svc, api, citizen, make_demarche, browser, user,
                                       sign_in):
    limited = make_demarche(name="Sans documents", scopes=["requests:write"],
                            host="d.example.org")
    response = api("POST", "/api/documents/download", limited.token, json={"grant": "x" * 43})
    assert response.status_code == 403 and response.get_json()["error"] == "insufficient_scope"


def test_the_pick_page_refuses_an_unregistered_return_address(browser, citizen, demarche):
    response = browser.get("/compte/porte-documents/choisir", query_string={
        "client_id": demarche.client_id, "redirect_uri": "https://evil.example.com/cb"})
    assert response.status_code == 400
    assert browser.get("/compte/porte-documents/choisir?client_id=nope&redirect_uri=x") \
        .status_code == 400


def test_the_user_uploads_and_shares_in_one_step(app, svc, api, citizen, demarche, browser):
    query = {"client_id": demarche.client_id, "redirect_uri": demarche.registered.redirect_uri,
             "state": "s"}
    page = browser.get("/compte/porte-documents/choisir", query_string=query)
    response = browser.post("/compte/porte-documents/choisir", content_type="multipart/form-data",
                            data={**query, "csrf_token": csrf_token(page.get_data(as_text=True)),
                                  "decision": "upload", "name": "Plan", "document_date": "",
                                  "file": (io.BytesIO(DWG), "plan.dwg")})
    grant = _grant_of(response)["grant"]
    assert api("POST", "/api/documents/download", demarche.token,
               json={"grant": grant}).data == DWG


# -- storage ---------------------------------------------------------------------------------
def test_encrypted_store_refuses_a_tampered_or_moved_file(tmp_path):
    store = hub_storage.EncryptedStore(hub_storage.FolderStore(tmp_path), b"k" * 32)
    store.put("a" * 32, b"secret content")
    assert store.get("a" * 32) == b"secret content"
    blob = (tmp_path / "aa" / ("a" * 32)).read_bytes()
    (tmp_path / "bb").mkdir()
    (tmp_path / "bb" / ("b" * 32)).write_bytes(blob)
    with pytest.raises(hub_storage.StorageError):
        store.get("b" * 32)  # the key is the associated data
    (tmp_path / "aa" / ("a" * 32)).write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(hub_storage.StorageError):
        store.get("a" * 32)
    with pytest.raises(hub_storage.StorageError):
        store.put("../etc/passwd", b"x")
    assert "kkkk" not in repr(store)


def test_the_wallet_key_comes_from_the_settings(make_app):
    import base64

    app = make_app(hub={"wallet_key": base64.b64encode(b"w" * 32).decode()})
    assert hub_storage.wallet_key(app.extensions["idp"].settings, "ignored") == b"w" * 32
    bad = make_app(hub={"wallet_key": base64.b64encode(b"short").decode()})
    with pytest.raises(ValueError):
        hub_storage.wallet_key(bad.extensions["idp"].settings, "x")


@pytest.fixture
def s3_server():
    from moto.server import ThreadedMotoServer

    from tests.e2e.conftest import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_the_wallet_on_s3_compatible_storage(make_app, s3_server, user_factory):
    import boto3

    settings = {"wallet_storage": "s3", "s3_endpoint_url": s3_server, "s3_bucket": "wallet",
                "s3_access_key_id": "test", "s3_secret_access_key": "test"}
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket="wallet")
    app = make_app(hub=settings)
    from tests.conftest import _wipe

    _wipe(app.extensions["idp"].db)
    from tests.support import Browser, make_user

    user = make_user(app, app.extensions["idp"])
    browser = Browser(app.test_client())
    browser.login(user.email)
    assert upload(browser, PDF, "a.pdf").status_code == 302
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="wallet")["Contents"]]
    assert len(keys) == 1
    stored = client.get_object(Bucket="wallet", Key=keys[0])["Body"].read()
    assert b"%PDF" not in stored
    with app.app_context():
        document_id = app.extensions["idp"].db.session.query(WalletDocument).one().id
    assert browser.get(f"/compte/porte-documents/{document_id}").data == PDF
    token = csrf_token(browser.get("/compte/porte-documents").get_data(as_text=True))
    browser.post(f"/compte/porte-documents/{document_id}/supprimer", data={"csrf_token": token})
    assert client.list_objects_v2(Bucket="wallet").get("KeyCount") == 0
