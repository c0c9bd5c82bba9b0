"""Steps of the provider's pages shared by the journeys (labels as a citizen reads them)."""

from __future__ import annotations

import re

from idp.security.captcha import parse_answer

STRONG_PASSWORD = "un aligot bien chaud sous la pluie"
LINK_RE = re.compile(r"https?://\S+")
CODE_RE = re.compile(r"\b[A-Z0-9]{6}\b")
# The code a link carries after its "#" (security/link_codes.py), as the message shows it.
LINK_CODE_RE = re.compile(r"\b[A-Z2-9]{4}(?:-[A-Z2-9]{4}){4}\b")


def captcha(visit) -> None:
    """With JavaScript the proof of work runs by itself; without, answer the question."""
    if visit.javascript:
        return
    page = visit.page
    question = page.locator("label[for=captcha_answer]").inner_text()
    words = re.findall(r"[\w-]+", question.lower())
    numbers = [n for n in (parse_answer(w) for w in words) if n is not None]
    if "plus grand" in question.lower():
        answer = max(numbers)
    elif " moins " in question.lower():
        answer = numbers[0] - numbers[1]
    else:
        answer = numbers[0] + numbers[1]
    page.get_by_label(question).fill(str(answer))


def sign_in(visit, email: str, password: str) -> None:
    page = visit.page
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe", exact=False).first.fill(password)
    page.get_by_role("button", name="Se connecter").click()


def consent(visit, page=None) -> None:
    """Answer the consent screen when the provider shows it (in ``page``, another tab of
    the visit's browser, when given)."""
    page = page or visit.page
    allow = page.get_by_role("button", name="Autoriser")
    if allow.count():
        visit.check("consentement", page)
        allow.click()


def fragment_code(visit, page, label: str, code: str) -> None:
    """A page opened from a link whose code follows the "#": its script fills the field in
    and drops the code from the address bar; without JavaScript the citizen types the code
    shown in the message."""
    field = page.get_by_label(label)
    if visit.javascript:
        assert field.input_value() == code, "the page's script did not fill the code in"
        assert "#" not in page.url, f"the code stays in the address bar: {page.url}"
    else:
        assert field.input_value() == "", "a code filled in without JavaScript"
        field.fill(code)


def link_in(message: dict, path: str) -> str:
    for link in LINK_RE.findall(message["text"]):
        if path in link:
            return link.rstrip(".,)")
    raise AssertionError(f"no link to {path} in {message['subject']!r}")


def link_code_in(message: dict) -> str:
    match = LINK_CODE_RE.search(message["text"])
    assert match, f"no link code in {message['subject']!r}"
    return match.group(0)


def code_in(message: dict) -> str:
    match = CODE_RE.search(message["text"])
    assert match, f"no code in {message.get('subject') or message['text']!r}"
    return match.group(0)
