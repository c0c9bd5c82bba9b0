"""Password hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordService:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(memory_cost=memory_kib, time_cost=time_cost,
                                     parallelism=parallelism)
        # Verified against when the account does not exist, so that an unknown email
        # costs the same time as a wrong password (no enumeration by timing).
        self._dummy_hash = self.hasher.hash("dummy password for timing equalisation")

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        if not password_hash:
            self.verify_dummy(password)
            return False
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> None:
        try:
            self.hasher.verify(self._dummy_hash, password)
        except VerificationError:
            pass

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
