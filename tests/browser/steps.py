"""Steps of the provider's pages shared by the journeys (labels as a citizen reads them)."""

from __future__ import annotations

import re

from idp.security.captcha import parse_answer

STRONG_PASSWORD = "un aligot bien chaud sous la pluie"
LINK_RE = re.compile(r"https?://\S+")
CODE_RE = re.compile(r"\b[A-Z0-9]{6}\b")


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


def consent(visit) -> None:
    """Answer the consent screen when the provider shows it."""
    page = visit.page
    allow = page.get_by_role("button", name="Autoriser")
    if allow.count():
        visit.check("consentement")
        allow.click()


def link_in(message: dict, path: str) -> str:
    for link in LINK_RE.findall(message["text"]):
        if path in link:
            return link.rstrip(".,)")
    raise AssertionError(f"no link to {path} in {message['subject']!r}")


def code_in(message: dict) -> str:
    match = CODE_RE.search(message["text"])
    assert match, f"no code in {message.get('subject') or message['text']!r}"
    return match.group(0)
