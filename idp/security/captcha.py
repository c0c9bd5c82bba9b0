"""Self-hosted anti-robot check: nothing is sent to a third party.

:class:`ProofOfWorkCaptcha` is compatible with ALTCHA (https://altcha.org), version 1
of its protocol: the server hands out ``{algorithm, challenge, maxnumber, salt,
signature}`` where ``challenge = SHA-256(salt + str(number))`` for a secret random
``number <= maxnumber``, ``signature = HMAC-SHA-256(key, challenge)`` and the salt
is ``<nonce>?expires=<unix time>&sig=<HMAC of nonce and expiry>``. The browser
(``idp/static/js/captcha.js``) finds ``number`` by brute force and posts
``captcha_payload``: base64 of the JSON ``{algorithm, challenge, number, salt, signature,
took}``.

The challenge's signature covers only ``SHA-256(salt + number)``, and that concatenation
does not tell where the salt ends: moving digits of ``number`` to the end of the salt
keeps the digest and lengthens ``expires``. So the salt's fields carry a signature of
their own and must have the exact shape made here, and no expiry (and no time-to-live
written to the replay store) may reach beyond ``ttl`` from now.

This is a speed bump, not a wall: it makes each form post cost a few hundred
milliseconds of a browser's CPU, which a determined attacker pays with more machines.
The rate limits and the per-account counters are what hold.

Core flows must work without JavaScript, so every challenge also carries a simple
question in words, in the page's language ("Combien font quatre plus sept ?", "What is
four plus seven?"), answered in digits. The
expected answer is not readable by the client: the token (``captcha_token``) is
``nonce.expires.mac`` with ``mac = HMAC-SHA-256(key, nonce, expires, answer)``, so the
server checks a typed answer without storing anything until it is used. This fallback only
stops unsophisticated robots; the rate limits do the rest.

Each solved challenge, and each fallback token, is accepted once: the replay store
(``set_if_absent(key, value, ttl) -> bool``, our key-value store) remembers it until
it expires. A fallback token is spent by any attempt, right or wrong, so that its
answer cannot be guessed by retrying. The page should render a fresh
:meth:`challenge` every time it shows the form.

Form fields: ``captcha_payload`` (hidden, filled by the script), ``captcha_token``
(hidden) and ``captcha_answer`` (the fallback answer).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from flask_babel import gettext, pgettext

from idp.persistence.kv import MemoryStore

PAYLOAD_FIELD = "captcha_payload"
TOKEN_FIELD = "captcha_token"
ANSWER_FIELD = "captcha_answer"
ALGORITHM = "SHA-256"
TEST_PASS = "test-pass"
# Solved challenges are remembered this much longer than their expiry (clock skew).
REPLAY_MARGIN = 60
# The one shape of a salt made by ProofOfWorkCaptcha.challenge.
_SALT_RE = re.compile(r"(?P<nonce>[0-9a-f]{24})\?expires=(?P<expires>[0-9]{1,12})"
                      r"&sig=(?P<sig>[0-9a-f]{32})")



def _number_words(pgettext: Callable[[str, str], str] = pgettext) -> list[str]:
    """0 to 20 in words, in the page's language (French outside a request). Written as
    literal ``pgettext`` calls so that ``scripts/i18n update`` extracts every word."""
    return [pgettext("nombre", "zéro"), pgettext("nombre", "un"), pgettext("nombre", "deux"),
            pgettext("nombre", "trois"), pgettext("nombre", "quatre"),
            pgettext("nombre", "cinq"), pgettext("nombre", "six"), pgettext("nombre", "sept"),
            pgettext("nombre", "huit"), pgettext("nombre", "neuf"), pgettext("nombre", "dix"),
            pgettext("nombre", "onze"), pgettext("nombre", "douze"),
            pgettext("nombre", "treize"), pgettext("nombre", "quatorze"),
            pgettext("nombre", "quinze"), pgettext("nombre", "seize"),
            pgettext("nombre", "dix-sept"), pgettext("nombre", "dix-huit"),
            pgettext("nombre", "dix-neuf"), pgettext("nombre", "vingt")]


# The French words (the message ids), whatever the language of the page.
_NUMBER_WORDS = _number_words(lambda _context, word: word)


class ReplayStore(Protocol):
    def set_if_absent(self, key: str, value: str, ttl: int) -> bool: ...


class Captcha(Protocol):
    def challenge(self) -> dict: ...
    def verify(self, form_data: Mapping[str, str]) -> bool: ...


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace(" ", "-")


_WORD_VALUES = {_fold(word): value for value, word in enumerate(_NUMBER_WORDS)}


def parse_answer(raw: str) -> int | None:
    """A fallback answer typed in digits (or, leniently, as a word in French or in the
    page's language)."""
    text = (raw or "").strip()
    if not text or len(text) > 20:
        return None
    digits = text.replace(" ", "")
    if digits.isascii() and digits.isdigit():
        return int(digits)
    folded = _fold(text)
    if folded in _WORD_VALUES:
        return _WORD_VALUES[folded]
    return next((value for value, word in enumerate(_number_words()) if _fold(word) == folded),
                None)


def _make_question(rng: secrets.SystemRandom) -> tuple[str, int]:
    """A question in the page's language, and its answer."""
    words = _number_words()
    kind = rng.randrange(3)
    a, b = rng.randint(1, 10), rng.randint(1, 10)
    if kind == 0:
        return gettext("Combien font %(a)s plus %(b)s ?", a=words[a], b=words[b]), a + b
    if kind == 1:
        a, b = max(a, b) + 5, min(a, b)
        return gettext("Combien font %(a)s moins %(b)s ?", a=words[a], b=words[b]), a - b
    c = rng.randint(1, 10)
    return (gettext("Quel est le plus grand nombre parmi %(a)s, %(b)s et %(c)s ?",
                    a=words[a], b=words[b], c=words[c]), max(a, b, c))


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def solve_pow(challenge: Mapping[str, Any]) -> str | None:
    """Find the number and build the payload, as the browser does (tests, tools)."""
    started = time.monotonic()
    for number in range(int(challenge["maxnumber"]) + 1):
        if _sha256_hex(f"{challenge['salt']}{number}") == challenge["challenge"]:
            return encode_payload({
                "algorithm": challenge["algorithm"], "challenge": challenge["challenge"],
                "number": number, "salt": challenge["salt"],
                "signature": challenge["signature"],
                "took": int((time.monotonic() - started) * 1000)})
    return None


def encode_payload(payload: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


class ProofOfWorkCaptcha:
    """ALTCHA-compatible proof of work, with a no-JavaScript fallback question."""

    def __init__(self, secret_key: str, difficulty: int, ttl: int = 600,
                 replay_store: ReplayStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret_key:
            raise ValueError("the captcha needs a secret key")
        if difficulty < 1:
            raise ValueError("difficulty (maxnumber) must be positive")
        # A key of its own, so that nothing signed elsewhere with secret_key is valid here.
        self._key = hmac.new(secret_key.encode(), b"idp captcha v1", hashlib.sha256).digest()
        self.difficulty = difficulty
        self.ttl = ttl
        # Without a shared store, replays are still refused within this process.
        self.replay_store: ReplayStore = replay_store if replay_store is not None else MemoryStore()
        self._clock = clock
        self._rng = secrets.SystemRandom()

    # -- challenge --------------------------------------------------------
    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def _answer_mac(self, nonce: str, expires: int, answer: int) -> str:
        return self._sign(f"fallback:{nonce}:{expires}:{answer}")

    def _salt_signature(self, nonce: str, expires: int) -> str:
        return self._sign(f"salt:{nonce}:{expires}")[:32]

    def challenge(self) -> dict:
        expires = int(self._clock()) + self.ttl
        nonce = secrets.token_hex(12)
        salt = f"{nonce}?expires={expires}&sig={self._salt_signature(nonce, expires)}"
        number = self._rng.randint(0, self.difficulty)
        digest = _sha256_hex(f"{salt}{number}")
        pow_challenge = {"algorithm": ALGORITHM, "challenge": digest,
                         "maxnumber": self.difficulty, "salt": salt,
                         "signature": self._sign(digest)}
        question, answer = _make_question(self._rng)
        nonce = secrets.token_hex(12)
        token = f"{nonce}.{expires}.{self._answer_mac(nonce, expires, answer)}"
        return {
            "pow": pow_challenge,
            "pow_json": json.dumps(pow_challenge, separators=(",", ":")),
            "question": question,
            "question_token": token,
            "payload_field": PAYLOAD_FIELD,
            "token_field": TOKEN_FIELD,
            "answer_field": ANSWER_FIELD,
        }

    # -- verification -----------------------------------------------------
    def verify(self, form_data: Mapping[str, str]) -> bool:
        try:
            payload = (form_data.get(PAYLOAD_FIELD) or "").strip()
            if payload and self._verify_pow(payload):
                return True
            token = (form_data.get(TOKEN_FIELD) or "").strip()
            answer = form_data.get(ANSWER_FIELD) or ""
            if token and answer.strip():
                return self._verify_fallback(token, answer)
        except Exception:  # noqa: BLE001 - a malformed form never makes a 500
            return False
        return False

    def _verify_pow(self, payload: str) -> bool:
        if len(payload) > 4096:
            return False
        try:
            data = json.loads(base64.b64decode(payload, validate=True))
        except (binascii.Error, ValueError):
            return False
        if not isinstance(data, dict) or data.get("algorithm") != ALGORITHM:
            return False
        salt, digest, signature = data.get("salt"), data.get("challenge"), data.get("signature")
        number = data.get("number")
        if not all(isinstance(v, str) for v in (salt, digest, signature)):
            return False
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= self.difficulty:
            return False
        if not hmac.compare_digest(self._sign(digest), signature):
            return False
        if not hmac.compare_digest(_sha256_hex(f"{salt}{number}"), digest):
            return False
        expires = self._expires(salt)
        now = self._clock()
        if expires is None or not self._live(expires, now):
            return False
        return bool(self.replay_store.set_if_absent(f"captcha:pow:{digest}", "1",
                                                    self._replay_ttl(expires, now)))

    def _expires(self, salt: str) -> int | None:
        """The expiry of a salt made here (its own signature checked), else None."""
        match = _SALT_RE.fullmatch(salt)
        if match is None:
            return None
        expires = int(match["expires"])
        expected = self._salt_signature(match["nonce"], expires)
        return expires if hmac.compare_digest(expected, match["sig"]) else None

    def _live(self, expires: int, now: float) -> bool:
        """Not expired, and not further ahead than a challenge made now could be."""
        return now <= expires <= now + self.ttl + REPLAY_MARGIN

    def _replay_ttl(self, expires: int, now: float) -> int:
        return max(1, min(int(expires - now), self.ttl)) + REPLAY_MARGIN

    def _verify_fallback(self, token: str, raw_answer: str) -> bool:
        parts = token.split(".")
        if len(token) > 256 or len(parts) != 3 or not parts[1].isdigit():
            return False
        nonce, expires, mac = parts[0], int(parts[1]), parts[2]
        now = self._clock()
        if not self._live(expires, now):
            return False
        # Spent by this attempt, whatever the answer: no second guess with one token.
        # (An attacker can spend tokens of others only by knowing them: harmless.)
        if not self.replay_store.set_if_absent(f"captcha:fallback:{nonce}", "1",
                                               self._replay_ttl(expires, now)):
            return False
        answer = parse_answer(raw_answer)
        return answer is not None and hmac.compare_digest(
            self._answer_mac(nonce, expires, answer), mac)


class TestCaptcha:
    """For the test suite: passes only with ``captcha_payload == "test-pass"``."""

    __test__ = False  # not a pytest test class

    def challenge(self) -> dict:
        one = _number_words()[1]
        return {
            "pow": {},
            "pow_json": "",
            "question": gettext("Combien font %(a)s plus %(b)s ?", a=one, b=one),
            "question_token": "test",
            "payload_field": PAYLOAD_FIELD,
            "token_field": TOKEN_FIELD,
            "answer_field": ANSWER_FIELD,
        }

    def verify(self, form_data: Mapping[str, str]) -> bool:
        return form_data.get(PAYLOAD_FIELD) == TEST_PASS


def make_captcha(backend: str, secret_key: str, difficulty: int,
                 replay_store: ReplayStore | None, ttl: int = 600) -> Captcha:
    """Build the captcha named by ``registration.captcha_backend`` ("pow" or "test")."""
    if backend == "pow":
        return ProofOfWorkCaptcha(secret_key, difficulty, ttl=ttl, replay_store=replay_store)
    if backend == "test":
        return TestCaptcha()
    raise ValueError(f"unknown captcha backend {backend!r} (expected 'pow' or 'test')")
