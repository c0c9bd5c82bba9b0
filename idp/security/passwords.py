"""Password hashing with argon2id (argon2-cffi), at most a few at a time per process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..metrics import HASH_SECONDS


class HashingBusy(Exception):
    """Every hashing slot stayed taken for ``wait`` seconds: answer 503, try later."""


class PasswordService:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int,
                 max_concurrent: int = 2, wait: float = 5.0) -> None:
        self.hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost,
                                     parallelism=parallelism)
        # A flood of wrong passwords must not take every thread of the process: the
        # other requests (token, userinfo, pages) keep the threads beyond these slots.
        self.slots = threading.BoundedSemaphore(max_concurrent)
        self.wait = wait
        # Verified against when the account does not exist, so that an unknown email
        # costs the same time as a wrong password (no enumeration by timing).
        self.dummy_hash = self.hasher.hash("dummy password for timing equalisation")

    @contextmanager
    def slot(self, operation: str = "verify") -> Iterator[None]:
        if not self.slots.acquire(timeout=self.wait):
            raise HashingBusy()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.slots.release()
            HASH_SECONDS.labels(operation).observe(time.perf_counter() - started)

    def hash(self, password: str) -> str:
        with self.slot("hash"):
            return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        if not password_hash:
            self.verify_dummy(password)
            return False
        try:
            with self.slot():
                return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> None:
        try:
            with self.slot():
                self.hasher.verify(self.dummy_hash, password)
        except VerificationError:
            pass

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
