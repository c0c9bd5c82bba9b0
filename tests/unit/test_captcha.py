"""Unit tests of the self-hosted captcha (idp.security.captcha) and its widget."""

from __future__ import annotations

import base64
import html as html_module
import json
import re
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from idp.persistence.kv import MemoryStore
from idp.security import captcha as cap
from idp.security.captcha import ProofOfWorkCaptcha, TestCaptcha, make_captcha, solve_pow

ROOT = Path(__file__).resolve().parents[2]
DIFFICULTY = 2000


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def captcha(clock):
    return ProofOfWorkCaptcha("secret", DIFFICULTY, ttl=600, replay_store=MemoryStore(),
                              clock=clock)


def decode(payload: str) -> dict:
    return json.loads(base64.b64decode(payload))


def fallback_answer(question: str) -> int:
    words = {w: i for i, w in enumerate(cap._NUMBER_WORDS)}
    numbers = [words[w] for w in re.findall(r"[a-zéè-]+", question) if w in words]
    if "plus grand" in question:
        return max(numbers)
    a, b = numbers[-2:]
    return a + b if " plus " in question else a - b


def test_challenge_is_altcha_shaped(captcha, clock):
    challenge = captcha.challenge()
    pow_ = challenge["pow"]
    assert set(pow_) == {"algorithm", "challenge", "maxnumber", "salt", "signature"}
    assert pow_["algorithm"] == "SHA-256" and pow_["maxnumber"] == DIFFICULTY
    assert re.fullmatch(rf"[0-9a-f]{{24}}\?expires={int(clock.now) + 600}&sig=[0-9a-f]{{32}}",
                        pow_["salt"])
    assert json.loads(challenge["pow_json"]) == pow_
    assert challenge["question"].endswith("?")


def test_solved_payload_verifies_once(captcha):
    payload = solve_pow(captcha.challenge()["pow"])
    assert payload is not None
    assert captcha.verify({"captcha_payload": payload})
    # Replayed: refused.
    assert not captcha.verify({"captcha_payload": payload})


def test_replay_refused_across_instances_sharing_a_store(clock):
    store = MemoryStore()
    first = ProofOfWorkCaptcha("secret", DIFFICULTY, replay_store=store, clock=clock)
    second = ProofOfWorkCaptcha("secret", DIFFICULTY, replay_store=store, clock=clock)
    payload = solve_pow(first.challenge()["pow"])
    assert first.verify({"captcha_payload": payload})
    assert not second.verify({"captcha_payload": payload})


def test_wrong_number_refused(captcha):
    data = decode(solve_pow(captcha.challenge()["pow"]))
    data["number"] = (data["number"] + 1) % (DIFFICULTY + 1)
    assert not captcha.verify({"captcha_payload": cap.encode_payload(data)})


def test_tampered_signature_refused(captcha):
    data = decode(solve_pow(captcha.challenge()["pow"]))
    data["signature"] = data["signature"][:-1] + ("0" if data["signature"][-1] != "0" else "1")
    assert not captcha.verify({"captcha_payload": cap.encode_payload(data)})


def test_forged_challenge_with_own_salt_refused(captcha, clock):
    # A client inventing an easy challenge cannot sign it.
    salt = f"abc?expires={int(clock.now) + 600}"
    digest = cap._sha256_hex(salt + "0")
    forged = {"algorithm": "SHA-256", "challenge": digest, "number": 0, "salt": salt,
              "signature": "0" * 64}
    assert not captcha.verify({"captcha_payload": cap.encode_payload(forged)})


def test_challenge_signed_by_another_key_refused(clock):
    other = ProofOfWorkCaptcha("other secret", DIFFICULTY, clock=clock)
    mine = ProofOfWorkCaptcha("secret", DIFFICULTY, clock=clock)
    assert not mine.verify({"captcha_payload": solve_pow(other.challenge()["pow"])})


def test_expired_challenge_refused(captcha, clock):
    payload = solve_pow(captcha.challenge()["pow"])
    clock.now += 601
    assert not captcha.verify({"captcha_payload": payload})


def test_extended_expiry_in_salt_breaks_the_hash(captcha):
    data = decode(solve_pow(captcha.challenge()["pow"]))
    data["salt"] = re.sub(r"expires=\d+", "expires=9999999999", data["salt"])
    assert not captcha.verify({"captcha_payload": cap.encode_payload(data)})


class RecordingStore(MemoryStore):
    """The replay store, remembering the time-to-live of each key written."""

    def __init__(self) -> None:
        super().__init__()
        self.ttls: dict[str, int] = {}

    def set_if_absent(self, key, value, ttl):
        self.ttls[key] = ttl
        return super().set_if_absent(key, value, ttl)


def spliced(data: dict) -> dict:
    """The same SHA-256 input, split elsewhere: the number's first digit moved to the end
    of the salt (``salt + str(number)`` is unchanged, and so is the signed digest)."""
    digits = str(data["number"])
    return {**data, "salt": data["salt"] + digits[0], "number": int(digits[1:])}


def solved_with_a_long_number(captcha) -> dict:
    """A solved payload whose number has two digits or more, the second not 0."""
    while True:
        data = decode(solve_pow(captcha.challenge()["pow"]))
        if data["number"] >= 10 and str(data["number"])[1] != "0":
            return data


def test_splicing_the_number_into_the_salt_is_refused(clock):
    """Review 2026-12, finding 10: moving digits of the number to the end of the salt
    kept the signed digest and made ``expires`` eleven digits long (a replay key of 500
    years)."""
    store = RecordingStore()
    captcha = ProofOfWorkCaptcha("secret", DIFFICULTY, ttl=600, replay_store=store,
                                 clock=clock)
    data = solved_with_a_long_number(captcha)
    forged = spliced(data)
    assert cap._sha256_hex(f"{forged['salt']}{forged['number']}") == data["challenge"]
    assert not captcha.verify({"captcha_payload": cap.encode_payload(forged)})
    assert store.ttls == {}
    # The genuine payload still passes, and its replay key lives no longer than a
    # challenge does.
    assert captcha.verify({"captcha_payload": cap.encode_payload(data)})
    assert list(store.ttls.values()) == [600 + cap.REPLAY_MARGIN]


def test_a_salt_of_another_shape_is_refused_even_with_a_valid_signature(clock):
    """A signed digest over a salt not made by challenge(): refused, whatever its expiry."""
    captcha = ProofOfWorkCaptcha("secret", DIFFICULTY, ttl=600, replay_store=MemoryStore(),
                                 clock=clock)
    for salt in (f"abc?expires={int(clock.now) + 600}",
                 f"{'a' * 24}?expires={int(clock.now) + 600}&sig={'0' * 32}"):
        digest = cap._sha256_hex(salt + "7")
        data = {"algorithm": "SHA-256", "challenge": digest, "number": 7, "salt": salt,
                "signature": captcha._sign(digest)}
        assert not captcha.verify({"captcha_payload": cap.encode_payload(data)})


def test_replay_keys_never_outlive_a_challenge(clock):
    store = RecordingStore()
    captcha = ProofOfWorkCaptcha("secret", DIFFICULTY, ttl=600, replay_store=store,
                                 clock=clock)
    challenge = captcha.challenge()
    answer = fallback_answer(challenge["question"])
    assert captcha.verify({"captcha_token": challenge["question_token"],
                           "captcha_answer": str(answer)})
    assert captcha.verify({"captcha_payload": solve_pow(captcha.challenge()["pow"])})
    assert len(store.ttls) == 2
    assert all(0 < ttl <= 600 + cap.REPLAY_MARGIN for ttl in store.ttls.values())


@pytest.mark.parametrize("payload", ["", "not base64!", base64.b64encode(b"[1]").decode(),
                                     base64.b64encode(b"{}").decode(), "x" * 10_000])
def test_garbage_payload_refused(captcha, payload):
    assert not captcha.verify({"captcha_payload": payload})


def test_missing_fields_refused(captcha):
    assert not captcha.verify({})


def test_fallback_answer_accepted_once(captcha):
    challenge = captcha.challenge()
    answer = fallback_answer(challenge["question"])
    form = {"captcha_token": challenge["question_token"], "captcha_answer": f" {answer} "}
    assert captcha.verify(form)
    assert not captcha.verify(form)


def test_fallback_wrong_answer_refused_and_token_spent(captcha):
    challenge = captcha.challenge()
    answer = fallback_answer(challenge["question"])
    token = challenge["question_token"]
    assert not captcha.verify({"captcha_token": token, "captcha_answer": str(answer + 1)})
    # The token is spent by the wrong attempt: no second guess.
    assert not captcha.verify({"captcha_token": token, "captcha_answer": str(answer)})


def test_fallback_token_carries_no_answer(captcha, clock):
    # nonce.expires.mac: nothing but random hex, the expiry and an HMAC.
    nonce, expires, mac = captcha.challenge()["question_token"].split(".")
    assert re.fullmatch(r"[0-9a-f]{24}", nonce) and re.fullmatch(r"[0-9a-f]{64}", mac)
    assert int(expires) == int(clock.now) + 600


def test_fallback_expired_refused(captcha, clock):
    challenge = captcha.challenge()
    answer = fallback_answer(challenge["question"])
    clock.now += 601
    assert not captcha.verify({"captcha_token": challenge["question_token"],
                               "captcha_answer": str(answer)})


def test_fallback_token_with_extended_expiry_refused(captcha, clock):
    challenge = captcha.challenge()
    answer = fallback_answer(challenge["question"])
    nonce, expires, mac = challenge["question_token"].split(".")
    forged = f"{nonce}.{int(expires) + 300}.{mac}"
    assert not captcha.verify({"captcha_token": forged, "captcha_answer": str(answer)})


def test_fallback_accepts_french_number_words():
    assert cap.parse_answer("11") == 11
    assert cap.parse_answer("onze") == 11
    assert cap.parse_answer("Dix sept") == 17
    assert cap.parse_answer("zéro") == 0
    assert cap.parse_answer("beaucoup") is None
    assert cap.parse_answer("") is None


def test_invalid_pow_falls_back_to_question(captcha):
    challenge = captcha.challenge()
    answer = fallback_answer(challenge["question"])
    assert captcha.verify({"captcha_payload": "garbage", "captcha_token": challenge["question_token"],
                           "captcha_answer": str(answer)})


def test_test_captcha():
    test = TestCaptcha()
    assert test.verify({"captcha_payload": "test-pass"})
    assert not test.verify({})
    assert not test.verify({"captcha_payload": ""})
    assert not test.verify({"captcha_payload": "test-fail"})
    assert "question" in test.challenge()


def test_make_captcha():
    assert isinstance(make_captcha("test", "k", 10, None), TestCaptcha)
    pow_captcha = make_captcha("pow", "k", 1234, MemoryStore())
    assert isinstance(pow_captcha, ProofOfWorkCaptcha)
    assert pow_captcha.challenge()["pow"]["maxnumber"] == 1234
    with pytest.raises(ValueError):
        make_captcha("recaptcha", "k", 10, None)
    with pytest.raises(ValueError):
        make_captcha("pow", "", 10, None)


def render_widget(challenge, errors=(), **kwargs):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             extensions=["jinja2.ext.i18n"])
    env.install_null_translations(newstyle=True)  # _() as in the app, French msgids as is
    macro = env.get_template("macros/captcha.html").module.captcha_field
    return str(macro(challenge, errors, **kwargs))


def test_widget_renders_accessible_fieldset(captcha):
    challenge = captcha.challenge()
    html = render_widget(challenge)
    assert "<legend>Vérification anti-robot</legend>" in html
    assert 'name="captcha_payload"' in html and "data-captcha-payload" in html
    assert '<label for="captcha_answer">' in html and 'id="captcha_answer"' in html
    assert 'name="captcha_answer"' in html
    assert challenge["question"] in html
    assert 'role="status"' in html
    assert "<script" not in html
    # The challenge JSON survives HTML attribute escaping.
    attr = re.search(r'data-captcha-challenge="([^"]*)"', html).group(1)
    assert json.loads(html_module.unescape(attr)) == challenge["pow"]


def test_widget_links_errors(captcha):
    html = render_widget(captcha.challenge(), ["La vérification anti-robot a échoué."],
                         script_url="/static/js/captcha.js")
    assert 'id="captcha_errors"' in html
    assert 'aria-describedby="captcha_hint captcha_errors"' in html
    assert 'aria-invalid="true"' in html
    assert '<script src="/static/js/captcha.js" defer></script>' in html


def test_widget_renders_test_captcha():
    assert 'name="captcha_answer"' in render_widget(TestCaptcha().challenge())


JS_CHECK = r"""
const fs = require('fs'); const vm = require('vm'); const crypto = require('crypto');
vm.runInThisContext(fs.readFileSync(process.argv[2], 'utf8'));
const api = globalThis.idpCaptcha;
for (const s of ['', 'abc', 'a'.repeat(55), 'a'.repeat(56), 'a'.repeat(64), 'é€😀'.repeat(50)]) {
  if (api.sha256Hex(s) !== crypto.createHash('sha256').update(s, 'utf8').digest('hex')) {
    console.error('sha256 mismatch for length ' + s.length); process.exit(1);
  }
}
const challenge = JSON.parse(process.argv[3]);
(async () => {
  const viaSubtle = await api.solve(challenge);
  const saved = globalThis.crypto;
  Object.defineProperty(globalThis, 'crypto', {value: undefined, configurable: true});
  const viaScript = await api.solve(challenge);
  Object.defineProperty(globalThis, 'crypto', {value: saved, configurable: true});
  if (viaSubtle !== viaScript) { console.error('solvers disagree'); process.exit(1); }
  process.stdout.write(api.encodePayload(challenge, viaSubtle, 1));
})();
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_browser_script_solves_what_the_server_verifies(captcha, tmp_path):
    script = tmp_path / "check.js"
    script.write_text(JS_CHECK, encoding="utf-8")
    challenge = captcha.challenge()
    result = subprocess.run(["node", str(script), str(ROOT / "idp/static/js/captcha.js"),
                             challenge["pow_json"]],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert captcha.verify({"captcha_payload": result.stdout})
