"""Signing keys: generated into ``keys/`` on first start, rotated and pruned by the CLI.

Each key is one JSON file ``<kid>.json`` holding the private JWK and its creation time.
Every key on disk is in the JWKS, so that tokens signed before a rotation still verify.
Instances notice a rotation made by another process (the folder's modification time
changes) within ``RELOAD_CHECK_INTERVAL`` seconds; a new key is published at once but
signs only after ``ACTIVATION_DELAY``, longer than that interval, so that no instance
signs with a key the others do not know yet. A token whose ``kid`` is unknown makes
the store read the folder again before it is refused.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from joserfc.jwk import ECKey, KeySet, RSAKey

SUPPORTED_ALGS = ("RS256", "ES256")
RELOAD_CHECK_INTERVAL = 5.0
# A new key signs only once every instance has read it (and caches have had time to
# fetch the JWKS that holds it).
ACTIVATION_DELAY = 3 * RELOAD_CHECK_INTERVAL
# An unknown kid reads the folder again at most this often (a flood of made-up kids
# must not turn into a flood of directory reads).
UNKNOWN_KID_RELOAD_INTERVAL = 1.0


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    created_at: float
    key: RSAKey | ECKey


def generate_key(alg: str) -> RSAKey | ECKey:
    params = {"alg": alg, "use": "sig"}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, auto_kid=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, auto_kid=True)
    raise ValueError(f"unsupported algorithm {alg}")


class KeyStore:
    def __init__(self, directory: Path, algs: tuple[str, ...] | list[str] = SUPPORTED_ALGS) -> None:
        self.directory = Path(directory)
        self.algs = tuple(algs)
        self._lock = threading.Lock()
        self._loaded_mtime: float | None = None
        self._last_check = 0.0
        self._keys: list[SigningKey] = []
        self._jwks_json = b""
        self._keyset = KeySet([])
        self._unknown_kid_reload = 0.0

    # -- loading ----------------------------------------------------------
    def ensure(self) -> None:
        """Load the keys, generating one per algorithm when none exists."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load()
        missing = [alg for alg in self.algs if not any(k.alg == alg for k in self._keys)]
        for alg in missing:
            self._write(generate_key(alg))
        if missing:
            self._load()

    def _write(self, key: RSAKey | ECKey) -> Path:
        data = {"created_at": time.time(), "jwk": key.as_dict(private=True)}
        path = self.directory / f"{key.kid}.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
        return path

    def _load(self) -> None:
        keys = []
        for path in sorted(self.directory.glob("*.json")):
            data = json.loads(path.read_text())
            jwk = data["jwk"]
            cls = RSAKey if jwk["kty"] == "RSA" else ECKey
            key = cls.import_key(jwk)
            keys.append(SigningKey(kid=key.kid, alg=jwk["alg"],
                                   created_at=float(data["created_at"]), key=key))
        keys.sort(key=lambda k: k.created_at)
        public = {"keys": [k.key.as_dict(private=False) for k in reversed(keys)]}
        with self._lock:
            self._keys = keys
            self._keyset = KeySet([k.key for k in keys])
            self._jwks_json = json.dumps(public, separators=(",", ":")).encode()
            self._loaded_mtime = self._mtime()
            self._last_check = time.monotonic()

    def _mtime(self) -> float | None:
        try:
            return self.directory.stat().st_mtime
        except FileNotFoundError:
            return None

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._last_check < RELOAD_CHECK_INTERVAL:
            return
        self._last_check = now
        if self._mtime() != self._loaded_mtime:
            self._load()

    # -- use --------------------------------------------------------------------
    def signing_key(self, alg: str) -> SigningKey:
        """The newest key of ``alg`` that every instance has had time to publish (the
        oldest one when none has: a first start)."""
        self._maybe_reload()
        candidates = [k for k in self._keys if k.alg == alg]
        if not candidates:
            raise LookupError(f"no signing key for {alg}")
        active = [k for k in candidates if k.created_at <= time.time() - ACTIVATION_DELAY]
        return (active or candidates[:1])[-1]

    @property
    def keyset(self) -> KeySet:
        self._maybe_reload()
        return self._keyset

    def keyset_for(self, kid: str | None) -> KeySet:
        """The key set, read again first when it lacks ``kid`` (a key another instance
        has just added)."""
        self._maybe_reload()
        now = time.monotonic()
        if kid and not any(k.kid == kid for k in self._keys) \
                and now - self._unknown_kid_reload >= UNKNOWN_KID_RELOAD_INTERVAL:
            self._unknown_kid_reload = now
            self._load()
        return self._keyset

    @property
    def jwks_json(self) -> bytes:
        self._maybe_reload()
        return self._jwks_json

    @property
    def keys(self) -> list[SigningKey]:
        self._maybe_reload()
        return list(self._keys)

    # -- administration -------------------------------------------------------
    def rotate(self, algs: list[str] | None = None) -> list[SigningKey]:
        self.directory.mkdir(parents=True, exist_ok=True)
        kids = [self._write(generate_key(alg)).stem for alg in (algs or self.algs)]
        self._load()
        return [k for k in self._keys if k.kid in kids]

    def prune(self, max_age_seconds: float) -> list[SigningKey]:
        """Remove keys older than ``max_age_seconds``, always keeping the newest per alg."""
        self._load()
        newest = {alg: self.signing_key(alg).kid for alg in {k.alg for k in self._keys}}
        cutoff = time.time() - max_age_seconds
        removed = [k for k in self._keys if k.created_at < cutoff and k.kid not in newest.values()]
        for key in removed:
            (self.directory / f"{key.kid}.json").unlink(missing_ok=True)
        self._load()
        return removed
