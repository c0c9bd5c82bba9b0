"""Where the wallet's files live, encrypted: a folder (default) or an S3-compatible
bucket (boto3). Each file is AES-256-GCM with a random 96-bit nonce, its storage key as
associated data (a file moved under another key does not decrypt)."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import Settings

NONCE_BYTES = 12
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{16,100}$")


class StorageError(Exception):
    pass


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise StorageError("bad storage key")
    return key


class FolderStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        key = _check_key(key)
        return self.folder / key[:2] / key

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".part")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(temporary, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError("missing file") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    def __init__(self, settings: Settings) -> None:
        import boto3

        hub = settings.hub
        self.bucket = hub.s3_bucket
        self.client = boto3.client(
            "s3", endpoint_url=hub.s3_endpoint_url or None, region_name=hub.s3_region,
            aws_access_key_id=hub.s3_access_key_id or None,
            aws_secret_access_key=hub.s3_secret_access_key or None)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=_check_key(key), Body=data)

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=_check_key(key))["Body"].read()
        except ClientError as exc:
            raise StorageError("missing file") from exc

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=_check_key(key))


class EncryptedStore:
    """Encrypts on the way in, decrypts on the way out; the key never leaves it."""

    def __init__(self, store: BlobStore, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the wallet key must be 32 bytes")
        self.store = store
        self._aead = AESGCM(key)

    def __repr__(self) -> str:  # never the key
        return f"<EncryptedStore {type(self.store).__name__}>"

    def put(self, key: str, data: bytes) -> None:
        nonce = os.urandom(NONCE_BYTES)
        self.store.put(key, nonce + self._aead.encrypt(nonce, data, key.encode()))

    def get(self, key: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        blob = self.store.get(key)
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], key.encode())
        except InvalidTag:
            raise StorageError("the file cannot be decrypted") from None

    def delete(self, key: str) -> None:
        self.store.delete(key)


def wallet_key(settings: Settings, secret_key: str) -> bytes:
    """``hub.wallet_key`` (base64 of 32 bytes), or one derived from the secret key."""
    if settings.hub.wallet_key:
        try:
            key = base64.b64decode(settings.hub.wallet_key, validate=True)
        except ValueError:
            raise ValueError("hub.wallet_key is not valid base64") from None
        if len(key) != 32:
            raise ValueError("hub.wallet_key must be 32 bytes (base64)")
        return key
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"compte-usager wallet v1").derive(secret_key.encode())


def make_store(settings: Settings, secret_key: str) -> EncryptedStore:
    if settings.hub.wallet_storage == "s3":
        inner: BlobStore = S3Store(settings)
    else:
        inner = FolderStore(settings.resolve_path(settings.hub.wallet_dir))
    return EncryptedStore(inner, wallet_key(settings, secret_key))
