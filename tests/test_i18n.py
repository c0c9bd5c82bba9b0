"""Translations: the English catalogue is complete and compiled, and pages switch language.

Message ids are the French texts. When a test of the catalogue fails, run
``scripts/i18n update``, translate the new entries of
``idp/translations/en/LC_MESSAGES/messages.po``, then ``scripts/i18n compile`` (docs/i18n.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.frontend import ExtractMessages
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.support import PASSWORD, query_of

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "idp" / "translations" / "en" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _key(message) -> tuple[str | None, str]:
    msgid = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
    return message.context, msgid


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """The messages of the code and templates, extracted as ``scripts/i18n update`` does:
    babel.cfg, the default keywords plus ``_l`` and ``lazy_gettext``."""
    output = tmp_path_factory.mktemp("i18n") / "messages.pot"
    command = ExtractMessages()
    command.initialize_options()
    command.input_paths = [str(ROOT)]
    command.mapping_file = str(ROOT / "babel.cfg")
    command.keywords = "_l lazy_gettext"
    command.output_file = str(output)
    command.no_location = True
    command.sort_output = True
    command.finalize_options()
    command.log.disabled = True
    command.run()
    with output.open("rb") as fh:
        return read_po(fh)


@pytest.fixture(scope="module")
def english():
    with (CATALOGUE / "messages.po").open("rb") as fh:
        return read_po(fh)


def test_every_message_has_an_english_translation(extracted, english):
    messages = [m for m in extracted if m.id]
    assert len(messages) > 500  # the extraction did find the code and templates
    missing = [_key(m) for m in messages
               if english.get(_key(m)[1], context=m.context) is None
               or not all(_strings(english.get(_key(m)[1], context=m.context)))]
    assert not missing, (f"{len(missing)} message(s) without English translation, e.g. "
                         f"{missing[:5]}: run scripts/i18n update, translate them in "
                         "idp/translations/en/LC_MESSAGES/messages.po, then scripts/i18n compile")


def test_no_fuzzy_entry_and_same_placeholders(english):
    assert not english.fuzzy, "the header of messages.po is marked fuzzy"
    for message in english:
        if not message.id:
            continue
        assert not message.fuzzy, f"fuzzy entry: {message.id!r}"
        ids = message.id if isinstance(message.id, (list, tuple)) else [message.id]
        for string in _strings(message):
            assert sorted(PLACEHOLDER.findall(string)) in (
                sorted(PLACEHOLDER.findall(i)) for i in ids), (message.id, string)
        assert not list(message.check(english)), message.id


def test_compiled_catalogue_matches_the_po(english):
    with (CATALOGUE / "messages.mo").open("rb") as fh:
        compiled = read_mo(fh)
    # read_mo leaves contexts as bytes.
    compiled_strings = {(m.context.decode() if isinstance(m.context, bytes) else m.context,
                         _key(m)[1]): _strings(m) for m in compiled if m.id}
    po_strings = {_key(m): _strings(m) for m in english if m.id}
    stale = sorted(k[1] for k in po_strings.keys() | compiled_strings.keys()
                   if po_strings.get(k) != compiled_strings.get(k))
    assert not stale, f"messages.mo is out of date, run scripts/i18n compile: {stale[:5]}"


# -- pages ------------------------------------------------------------------------------------
def english_page(response) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == 200, (response.status_code, html[:300])
    assert '<html lang="en">' in html
    assert "%(" not in html, "a placeholder was left unfilled"
    return html


def test_login_page_in_english_and_the_choice_sticks(browser):
    html = english_page(browser.get("/login?lang=en"))
    assert "<h1>Sign in</h1>" in html and "Forgotten password?" in html
    assert "Create an account" in html and "Se connecter" not in html
    # No ?lang any more: the session remembers the choice.
    html = english_page(browser.get("/login"))
    assert "<h1>Sign in</h1>" in html
    assert '<html lang="fr">' in browser.get("/login?lang=fr").get_data(as_text=True)
    assert "<h1>Se connecter</h1>" in browser.get("/login").get_data(as_text=True)


def test_french_by_default(browser):
    html = browser.get("/login").get_data(as_text=True)
    assert '<html lang="fr">' in html and "Mot de passe perdu ?" in html


def test_registration_page_in_english(browser):
    html = english_page(browser.get("/inscription?lang=en"))
    assert "Create my account" in html
    assert "At least 12 characters" in html  # the password rule, with its numbers
    assert "Anti-robot check" in html  # and its question, in English words:
    assert re.search(r"(What is|Which is the largest number:) [a-z]+", html)
    assert "Answer in figures" in html


def test_recovery_selector_in_english(browser):
    html = english_page(browser.get("/mot-de-passe-perdu?lang=en"))
    assert "Forgotten password" in html and "I am:" in html
    assert "Service user" in html and "Elected representative" in html  # populations
    assert "Examples: applicant for support" in html


def test_my_account_in_english(browser, user):
    browser.login(user.email)
    html = english_page(browser.get("/compte/?lang=en"))
    assert "My account" in html and "Sign out" in html and "Mon compte" not in html


def test_consent_screen_in_english(browser, client_factory, user):
    client = client_factory()  # asks for consent
    browser.get("/login?lang=en")
    browser.login(user.email)
    response, _, _ = browser.authorize(client, scope="openid profile email")
    html = english_page(response)
    assert "“Démarche test” would like to access your information" in html
    assert f"You are signed in as {user.email}." in html
    assert "Your identity: surname, first name, date of birth" in html  # scope labels
    assert "Your email address" in html
    assert ">Allow</button>" in html and ">Refuse</button>" in html


def test_ui_locales_shows_the_login_page_in_english(browser, rp):
    response, _, _ = browser.authorize(rp, ui_locales="en-GB fr")
    html = english_page(browser.get(response.headers["Location"]))
    assert "<h1>Sign in</h1>" in html
    # The choice is remembered for the pages that follow.
    assert "<h1>Sign in</h1>" in english_page(browser.get("/login"))


def test_user_locale_applies_after_login(browser, user_factory):
    user = user_factory(locale="en")
    assert '<html lang="fr">' in browser.get("/login").get_data(as_text=True)
    browser.login(user.email)
    html = english_page(browser.get("/compte/"))
    assert "My account" in html and "Sign out" in html


def test_error_pages_in_english(browser):
    response = browser.get("/nowhere?lang=en")
    html = response.get_data(as_text=True)
    assert response.status_code == 404 and "Page not found" in html and "Not Found" not in html
    assert "Page introuvable" in browser.get("/nowhere?lang=fr").get_data(as_text=True)


def test_wrong_password_message_in_english(browser, user):
    page = browser.get("/login?lang=en")
    response = browser.submit(page, "email", {"email": user.email, "password": PASSWORD + "x"})
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html and "There is a problem with the form" in html


def test_captcha_question_and_answer_in_the_page_language(app):
    from idp.security.captcha import TestCaptcha, parse_answer

    with app.test_request_context("/?lang=en"):
        assert TestCaptcha().challenge()["question"] == "What is one plus one?"
        assert parse_answer("Seventeen") == 17 and parse_answer("dix-sept") == 17
    with app.test_request_context("/?lang=fr"):
        assert TestCaptcha().challenge()["question"] == "Combien font un plus un ?"


def test_the_language_link_keeps_the_sign_in_going_to_its_demarche(browser, rp, user):
    # Switching language on the login page keeps the address's query: the flow, and so
    # the démarche waiting for this sign-in (a bare ?lang=en dropped it).
    response, _, _ = browser.authorize(rp)
    page = browser.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)" lang="en"', html).group(1).replace("&amp;", "&")
    assert link.startswith(page.request.path + "?") and link.endswith("lang=en")
    assert query_of(link) == {**query_of("?" + page.request.query_string.decode()),
                              "lang": "en"}
    english = browser.get(link)
    assert "<h1>Sign in</h1>" in english_page(english)
    done = browser.submit(english, "email", {"email": user.email, "password": PASSWORD})
    answer = browser.get(done.headers["Location"])
    assert answer.status_code == 302 and answer.headers["Location"].startswith(rp.redirect_uri)
    assert "code=" in answer.headers["Location"]
