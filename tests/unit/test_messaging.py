"""Unit tests of idp.messaging: phone numbers, backends, messenger, templates."""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from idp.config import MessagingSettings
from idp.messaging import (DeliveryError, EmailMessage, HttpSmsBackend, InvalidPhone, Messenger,
                           OutboxEmailBackend, OutboxSmsBackend, SmsMessage, SmtpEmailBackend,
                           format_national, is_mobile, make_messenger, parse_phone, read_outbox,
                           region_of, render_message, render_sms)
from idp.messaging.sms import parse_auth_header, render_body
from idp.messaging.templates import MESSAGE_NAMES

CODE = "T3A8XQ"
LINK = "https://idp.example.org/mot-de-passe-oublie?code=T3A8XQ&jeton=secret-link-token"


# -- phone numbers ----------------------------------------------------------

@pytest.mark.parametrize("raw", ["06 12 34 56 78", "0612345678", "+33 6 12 34 56 78",
                                 "+33612345678", "0033 6 12 34 56 78", "06.12.34.56.78"])
def test_parse_french_mobile(raw):
    assert parse_phone(raw, "FR") == "+33612345678"


def test_parse_new_caledonia_with_default_region_nc():
    assert parse_phone("99 99 99", "NC") == "+687999999"
    assert parse_phone("99.99.99", "nc") == "+687999999"
    assert region_of("+687999999") == "NC"
    assert format_national("+687999999") == "99.99.99"


def test_parse_new_caledonia_from_france_needs_the_prefix():
    assert parse_phone("+687 99 99 99", "FR") == "+687999999"
    assert parse_phone("00 687 99 99 99", "FR") == "+687999999"


def test_parse_overseas_region():
    assert parse_phone("0690 00 12 34", "GP") == "+590690001234"
    assert region_of("+590690001234") == "GP"


@pytest.mark.parametrize("raw,region", [("", "FR"), ("   ", "FR"), ("abc", "FR"),
                                        ("+33 1 23", "FR"), ("06 12 34", "FR"),
                                        ("0612345678", "NC"), ("+687 11 22 33", "NC"),
                                        ("1" * 60, "FR"), ("+999 123456", "FR")])
def test_invalid_numbers_refused_with_french_message(raw, region):
    with pytest.raises(InvalidPhone) as info:
        parse_phone(raw, region)
    message = str(info.value)
    assert message and ("numéro" in message or "Saisissez" in message)


def test_format_and_type():
    assert format_national("+33612345678") == "06 12 34 56 78"
    assert region_of("+33612345678") == "FR"
    assert is_mobile("+33612345678")
    assert not is_mobile("+33123456789")


# -- outbox -----------------------------------------------------------------

def test_outbox_backends_write_what_read_outbox_reads(tmp_path):
    outbox = tmp_path / "outbox"
    OutboxEmailBackend(outbox).send(EmailMessage("jean@example.org", "Sujet", "texte é", "<p>x</p>"))
    OutboxSmsBackend(outbox).send(SmsMessage("+687999999", "code 123456"))
    messages = read_outbox(outbox)
    assert [m["kind"] for m in messages] == ["email", "sms"]  # newest last
    email, sms = messages
    assert email["to"] == "jean@example.org" and email["subject"] == "Sujet"
    assert email["text"] == "texte é" and email["html"] == "<p>x</p>"
    assert sms["to"] == "+687999999" and sms["text"] == "code 123456"
    assert sms["subject"] == "" and sms["html"] == ""
    assert all(m["created_at"] for m in messages)
    assert (Path(email["path"]).stat().st_mode & 0o777) == 0o600


def test_read_outbox_of_missing_folder(tmp_path):
    assert read_outbox(tmp_path / "nothing") == []


def test_outbox_refuses_header_injection(tmp_path):
    with pytest.raises(DeliveryError):
        OutboxEmailBackend(tmp_path).send(EmailMessage("a@example.org\nBcc: x@y", "s", "t"))


# -- HTTP SMS gateway -------------------------------------------------------

class LocalServer:
    """A socketserver on 127.0.0.1 served by a thread while in a `with` block."""

    server: socketserver.BaseServer

    def start(self, server: socketserver.BaseServer) -> None:
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class Gateway(LocalServer):
    """A local HTTP server answering with the given statuses, in turn."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gateway.requests.append({"path": self.path, "headers": dict(self.headers),
                                         "body": body})
                status = gateway.statuses.pop(0) if len(gateway.statuses) > 1 else gateway.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.start(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        self.url = f"http://127.0.0.1:{self.port}/sms"


def local_session():
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment for 127.0.0.1
    return session


def test_http_sms_backend_posts_json_with_auth_header():
    text = 'Code : 123456. "Guillemets", \\ et\nretour à la ligne {to}'
    with Gateway([200]) as gateway:
        backend = HttpSmsBackend(gateway.url, "Bearer s3cret",
                                 '{"to": "{to}", "text": "{text}", "from": "Region"}', 2.0,
                                 session=local_session())
        Messenger(None, backend, retries=0).send_sms(SmsMessage("+687999999", text))
    (request,) = gateway.requests
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"to": "+687999999", "text": text, "from": "Region"}


def test_http_sms_backend_custom_auth_header_name():
    with Gateway([204]) as gateway:
        backend = HttpSmsBackend(gateway.url, "X-Api-Key: abc", session=local_session())
        backend.send(SmsMessage("+33612345678", "hello"))
    assert gateway.requests[0]["headers"]["X-Api-Key"] == "abc"
    assert "Authorization" not in gateway.requests[0]["headers"]


def test_render_body_escapes_and_does_not_substitute_twice():
    body = render_body('{"to": "{to}", "text": "{text}"}', "+33612345678", '{to} "x"\n')
    assert json.loads(body) == {"to": "+33612345678", "text": '{to} "x"\n'}


def test_parse_auth_header():
    assert parse_auth_header("") == {}
    assert parse_auth_header("Basic dXNlcjpwYXNz") == {"Authorization": "Basic dXNlcjpwYXNz"}
    assert parse_auth_header("Authorization: Bearer a:b") == {"Authorization": "Bearer a:b"}


def test_http_sms_retries_then_false_on_repeated_500():
    delays = []
    with Gateway([500]) as gateway:
        backend = HttpSmsBackend(gateway.url, session=local_session())
        messenger = Messenger(None, backend, retries=2, sleep=delays.append)
        assert messenger.send_sms(SmsMessage("+33612345678", "code")) is False
    assert len(gateway.requests) == 3
    assert delays == [0.25, 0.5]


def test_http_sms_retry_succeeds_after_transient_failure():
    with Gateway([503, 200]) as gateway:
        backend = HttpSmsBackend(gateway.url, session=local_session())
        messenger = Messenger(None, backend, retries=2, sleep=lambda s: None)
        assert messenger.send_sms(SmsMessage("+33612345678", "code")) is True
    assert len(gateway.requests) == 2


def test_http_sms_permanent_failure_not_retried():
    with Gateway([400]) as gateway:
        backend = HttpSmsBackend(gateway.url, session=local_session())
        assert Messenger(None, backend, retries=3, sleep=lambda s: None).send_sms(
            SmsMessage("+33612345678", "code")) is False
    assert len(gateway.requests) == 1


def test_http_sms_unreachable_gateway_returns_false():
    with Gateway([200]) as gateway:
        url = gateway.url
    backend = HttpSmsBackend(url, timeout=1.0, session=local_session())  # server closed
    assert Messenger(None, backend, retries=1, sleep=lambda s: None).send_sms(
        SmsMessage("+33612345678", "code")) is False


def test_http_sms_backend_validates_its_settings():
    with pytest.raises(ValueError):
        HttpSmsBackend("", "")
    with pytest.raises(ValueError):
        HttpSmsBackend("https://gw.example.org", "", '{"to": "{to}"}')


# -- SMTP -------------------------------------------------------------------

class FakeSmtp(LocalServer):
    """A tiny SMTP server (no TLS) recording what it receives."""

    def __init__(self, rcpt_reply: str = "250 OK"):
        self.messages: list[dict] = []
        self.commands: list[str] = []
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 fake.example ESMTP")
                envelope: dict = {"rcpt": []}
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    command = line.decode().strip()
                    verb = command.split(" ", 1)[0].upper()
                    fake.commands.append(verb)
                    if verb == "EHLO":
                        self.wfile.write(b"250-fake.example\r\n250-8BITMIME\r\n250 SIZE 100000\r\n")
                    elif verb == "MAIL":
                        envelope["from"] = command
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        envelope["rcpt"].append(command)
                        self.reply(rcpt_reply)
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        data = b""
                        while not data.endswith(b"\r\n.\r\n"):
                            chunk = self.rfile.readline()
                            if not chunk:
                                return
                            data += chunk
                        envelope["data"] = data[:-5].replace(b"\r\n..", b"\r\n.")
                        fake.messages.append(envelope)
                        envelope = {"rcpt": []}
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.start(server)


def test_smtp_backend_sends_multipart_text_and_html():
    with FakeSmtp() as smtp:
        backend = SmtpEmailBackend("127.0.0.1", smtp.port, "none", timeout=5,
                                   sender="Compte usager <no-reply@example.org>")
        ok = Messenger(backend, None, retries=0).send_email(
            EmailMessage("jean@example.org", "Votre code de validation", "Code : 123456 é",
                         "<p>Code : <b>123456</b></p>"))
    assert ok
    (envelope,) = smtp.messages
    assert "STARTTLS" not in smtp.commands
    assert "<no-reply@example.org>" in envelope["from"]
    assert [r.upper() for r in envelope["rcpt"]] == ["RCPT TO:<JEAN@EXAMPLE.ORG>"]
    parsed = message_from_bytes(envelope["data"], policy=policy.default)
    assert parsed["Subject"] == "Votre code de validation"
    assert parsed["To"] == "jean@example.org"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"].endswith("@example.org>")
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().strip() == "Code : 123456 é"
    assert "<b>123456</b>" in parsed.get_body(("html",)).get_content()


def test_smtp_starttls_required_when_asked():
    with FakeSmtp() as smtp:
        backend = SmtpEmailBackend("127.0.0.1", smtp.port, "starttls", timeout=5)
        with pytest.raises(DeliveryError) as info:
            backend.send(EmailMessage("jean@example.org", "s", "t"))
    assert not info.value.transient
    assert smtp.messages == []


def test_smtp_refused_recipient_is_permanent():
    with FakeSmtp(rcpt_reply="550 no such user") as smtp:
        backend = SmtpEmailBackend("127.0.0.1", smtp.port, "none", timeout=5)
        messenger = Messenger(backend, None, retries=3, sleep=lambda s: None)
        assert messenger.send_email(EmailMessage("nobody@example.org", "s", "t")) is False
    assert smtp.commands.count("RCPT") == 1


def test_smtp_unreachable_is_retried_then_false():
    with FakeSmtp() as smtp:
        port = smtp.port
    delays = []
    backend = SmtpEmailBackend("127.0.0.1", port, "none", timeout=1)
    messenger = Messenger(backend, None, retries=2, sleep=delays.append)
    assert messenger.send_email(EmailMessage("jean@example.org", "s", "t")) is False
    assert len(delays) == 2


def test_smtp_backend_validates_security():
    with pytest.raises(ValueError):
        SmtpEmailBackend("localhost", 25, "ssl")


# -- messenger ---------------------------------------------------------------

class Recorder:
    def __init__(self, error: Exception | None = None):
        self.sent = []
        self.error = error

    def send(self, message):
        if self.error:
            raise self.error
        self.sent.append(message)


def test_guard_refusal_does_not_send():
    sms = Recorder()
    seen = []

    def guard(to, purpose):
        seen.append(to)
        return "Les SMS vers ce pays ne sont pas disponibles." if to.startswith("+1") else None

    messenger = Messenger(Recorder(), sms, retries=2, sms_guard=guard)
    assert messenger.send_sms(SmsMessage("+12025550123", "code")) is False
    assert messenger.check_sms("+12025550123") == "Les SMS vers ce pays ne sont pas disponibles."
    assert messenger.send_sms(SmsMessage("+687999999", "code")) is True
    assert [m.to_e164 for m in sms.sent] == ["+687999999"]


def test_guard_that_raises_refuses():
    def guard(to, purpose):
        raise RuntimeError("budget store down")

    sms = Recorder()
    assert Messenger(None, sms, retries=0, sms_guard=guard).send_sms(SmsMessage("+33612345678", "x")) is False
    assert sms.sent == []


def test_unexpected_exception_returns_false():
    messenger = Messenger(Recorder(RuntimeError("boom")), Recorder(KeyError("x")), retries=3,
                          sleep=lambda s: pytest.fail("no retry for a bug"))
    assert messenger.send_email(EmailMessage("a@example.org", "s", "t")) is False
    assert messenger.send_sms(SmsMessage("+33612345678", "t")) is False


def test_total_retry_time_is_bounded():
    delays = []
    failing = Recorder(DeliveryError("down", transient=True))
    messenger = Messenger(failing, None, retries=10, backoff=1.0, max_seconds=4.0,
                          sleep=delays.append)
    assert messenger.send_email(EmailMessage("a@example.org", "s", "t")) is False
    assert delays == [1.0, 2.0]  # the next one (4 s) would pass the 4-second budget
    assert sum(delays) <= 4.0


def test_make_messenger_from_settings(tmp_path):
    settings = MessagingSettings(outbox_dir=str(tmp_path / "box"))
    messenger = make_messenger(settings)
    assert isinstance(messenger.email_backend, OutboxEmailBackend)
    assert messenger.email_backend.outbox_dir == tmp_path / "box"
    assert messenger.send_email(EmailMessage("a@example.org", "s", "t"))
    assert messenger.send_sms(SmsMessage("+33612345678", "t"))
    assert len(read_outbox(tmp_path / "box")) == 2
    # An already-resolved path wins.
    assert make_messenger(settings, tmp_path / "other").sms_backend.outbox_dir == tmp_path / "other"


def test_make_messenger_relative_outbox_is_under_project_root():
    from idp.config import PROJECT_ROOT

    messenger = make_messenger(MessagingSettings(outbox_dir="instance/outbox"))
    assert messenger.email_backend.outbox_dir == PROJECT_ROOT / "instance" / "outbox"


def test_make_messenger_real_backends():
    settings = MessagingSettings(email_backend="smtp", sms_backend="http",
                                 sms_gateway_url="https://sms.example.org/send",
                                 sms_gateway_auth_header="Bearer t", send_retries=1)
    messenger = make_messenger(settings)
    assert isinstance(messenger.email_backend, SmtpEmailBackend)
    assert isinstance(messenger.sms_backend, HttpSmsBackend)
    assert messenger.retries == 1
    with pytest.raises(ValueError):
        make_messenger(MessagingSettings(email_backend="pigeon"))
    with pytest.raises(ValueError):
        make_messenger(MessagingSettings(sms_backend="http", sms_gateway_url=""))


# -- templates ---------------------------------------------------------------

CONTEXT = {"code": CODE, "expires_minutes": 10, "link": LINK, "expires_hours": 48,
           "login_url": "https://idp.example.org/connexion",
           "recovery_url": "https://idp.example.org/mot-de-passe-oublie",
           "when": "23/11/2026 à 13:05", "new_email": "n***@example.org", "action": "enabled",
           "until": "23/11/2026 à 14:05", "stage": "requested", "effective": "26/11/2026 à 13:05"}


@pytest.mark.parametrize("name", MESSAGE_NAMES)
@pytest.mark.parametrize("locale", ["fr", "en"])
def test_every_message_renders(name, locale):
    subject, text, html = render_message(name, locale, **CONTEXT)
    assert subject and "\n" not in subject and not subject.startswith("Subject")
    assert text.strip() and html.startswith("<!doctype html>")
    assert f'<html lang="{locale}">' in html
    assert CODE not in subject


def test_verification_code_french_wording():
    subject, text, html = render_message("verification_code", "fr", code="123456",
                                         expires_minutes=10)
    assert subject == "Votre code de validation"
    assert "Votre code de validation est : 123456. Il expire dans 10 minutes." in text
    assert "123456" in html
    assert "généré automatiquement" in text and "généré automatiquement" in html


def test_recovery_code_has_code_and_link():
    subject, text, html = render_message("recovery_code", "fr", **CONTEXT)
    assert subject == "Réinitialisation de votre mot de passe"
    assert CODE in text and LINK in text
    assert LINK.replace("&", "&amp;") in html  # autoescaped in HTML


def test_english_and_fallback_to_french():
    assert render_message("password_changed", "en", **CONTEXT)[0] == "Your password has been changed"
    assert render_message("password_changed", "en_GB", **CONTEXT)[0] == "Your password has been changed"
    french = render_message("password_changed", "fr", **CONTEXT)
    assert render_message("password_changed", "de", **CONTEXT) == french


def test_fallback_when_only_french_exists(tmp_path):
    (tmp_path / "hello.fr.txt").write_text("Subject: Bonjour {{ name }}\n\nSalut {{ name }}\n")
    (tmp_path / "hello.fr.html").write_text("<p>{{ name }}</p>")
    subject, text, html = render_message("hello", "en", templates_dir=tmp_path, name="<Zoé>")
    assert subject == "Bonjour <Zoé>"
    assert text == "Salut <Zoé>\n"
    assert html == "<p>&lt;Zoé&gt;</p>"


def test_missing_variable_is_an_error():
    with pytest.raises(Exception):
        render_message("verification_code", "fr", expires_minutes=10)


def test_bad_message_name_refused():
    with pytest.raises(LookupError):
        render_message("../base", "fr")
    with pytest.raises(LookupError):
        render_message("no_such_message", "fr")


def test_optional_support_url():
    without = render_message("password_changed", "fr", **CONTEXT)[1]
    with_support = render_message("password_changed", "fr", support_url="https://aide.example.org",
                                  **CONTEXT)[1]
    assert "aide.example.org" not in without and "aide.example.org" in with_support


def test_mfa_actions():
    assert "activée" in render_message("mfa_changed", "fr", **CONTEXT)[1]
    assert "désactivée" in render_message("mfa_changed", "fr", **{**CONTEXT, "action": "disabled"})[1]
    assert "modifiés" in render_message("mfa_changed", "fr", **{**CONTEXT, "action": "other"})[1]


def test_sms_texts():
    text = render_sms("verification_code", "fr", code="123456", expires_minutes=10)
    assert text == ("Compte usager : votre code de validation est 123456. Il expire dans "
                    "10 minutes. Ne le communiquez à personne.")
    assert len(text) <= 160
    assert "123456" in render_sms("recovery_code", "en", code="123456", expires_minutes=10)


# -- nothing secret in the logs ------------------------------------------------

def test_no_log_record_contains_code_or_link(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    subject, text, html = render_message("recovery_code", "fr", **CONTEXT)
    sms_text = render_sms("recovery_code", "fr", code=CODE, expires_minutes=10)
    outbox = Messenger(OutboxEmailBackend(tmp_path), OutboxSmsBackend(tmp_path), retries=0)
    assert outbox.send_email(EmailMessage("jean.dupond@example.org", subject, text, html))
    assert outbox.send_sms(SmsMessage("+33612345678", sms_text))
    with Gateway([500]) as gateway:
        http = Messenger(None, HttpSmsBackend(gateway.url, "Bearer s3cret", session=local_session()),
                         retries=1, sleep=lambda s: None)
        assert not http.send_sms(SmsMessage("+33612345678", sms_text))
    with FakeSmtp() as smtp:
        smtp_messenger = Messenger(SmtpEmailBackend("127.0.0.1", smtp.port, "none", timeout=5),
                                   None, retries=0)
        assert smtp_messenger.send_email(EmailMessage("jean.dupond@example.org", subject, text, html))
    broken = Messenger(Recorder(RuntimeError(f"failed to send {text}")), None, retries=0)
    assert not broken.send_email(EmailMessage("jean.dupond@example.org", subject, text, html))
    records = [r.getMessage() + " " + str(r.exc_text or "") for r in caplog.records]
    assert records, "something was logged"
    for line in records:
        assert CODE not in line and "secret-link-token" not in line and "s3cret" not in line
        assert "jean.dupond" not in line and "12345678" not in line  # recipients masked
    assert any("outbox" in line for line in records)
