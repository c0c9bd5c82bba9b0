"""Signing keys shared by several instances: a new key is published before it signs,
and a token signed with a key this instance has not read yet is not refused."""

from __future__ import annotations

import json
import time

from idp.oidc.keys import ACTIVATION_DELAY, KeyStore
from idp.oidc.tokens import TokenService


def backdate(store: KeyStore, kids: set[str], seconds: float) -> None:
    for path in store.directory.glob("*.json"):
        if path.stem in kids:
            data = json.loads(path.read_text())
            data["created_at"] -= seconds
            path.write_text(json.dumps(data))


def test_a_new_key_is_published_at_once_and_signs_after_the_activation_delay(tmp_path):
    store = KeyStore(tmp_path, ["ES256"])
    store.ensure()
    first = store.signing_key("ES256").kid
    (added,) = store.rotate(["ES256"])
    assert added.kid in store.jwks_json.decode()
    assert store.signing_key("ES256").kid == first
    backdate(store, {added.kid}, ACTIVATION_DELAY + 1)
    store._load()  # noqa: SLF001 - read the backdated file now
    assert store.signing_key("ES256").kid == added.kid


def test_a_token_signed_by_another_instances_new_key_is_accepted_at_once(app, svc, tmp_path):
    other = KeyStore(svc.keys.directory, svc.settings.tokens.signing_algs)
    other.ensure()
    new = other.rotate(["ES256"])
    backdate(other, {k.kid for k in new}, ACTIVATION_DELAY + 1)
    other._load()  # noqa: SLF001
    minted, _ = TokenService(svc.settings, other).mint_access_token(
        client_id="c", sub="s", scope="openid", ttl=60)
    # This instance read the folder less than RELOAD_CHECK_INTERVAL ago: it does not
    # know the key yet, and reads the folder again rather than refuse the token.
    svc.keys._last_check = time.monotonic()  # noqa: SLF001
    assert svc.tokens.decode_access_token(minted) is not None
