"""Password hashing for console logins: argon2id at the cost KEFU_PASSWORD_HASH_PROFILE names."""

from __future__ import annotations

import secrets
from functools import cached_property

from argon2 import Parameters, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import CHEAPEST, RFC_9106_LOW_MEMORY

from router.settings import PasswordHashProfile

_PROFILES: dict[PasswordHashProfile, Parameters] = {
    "rfc_9106_low_memory": RFC_9106_LOW_MEMORY,
    "cheapest": CHEAPEST,
}


def generate_password() -> str:
    """A random password to hand to someone who must replace it at first login (96 bits)."""
    return secrets.token_urlsafe(12)


class Passwords:
    """Hashes new passwords with one argon2id profile and checks any stored hash by the parameters it carries."""

    def __init__(self, profile: PasswordHashProfile) -> None:
        self._hasher = PasswordHasher.from_parameters(_PROFILES[profile])

    def hash(self, plain: str) -> str:
        """An argon2id hash to store instead of the password."""
        return self._hasher.hash(plain)

    def verify(self, password_hash: str, plain: str) -> bool:
        """Whether ``plain`` is the password behind ``password_hash``; a malformed hash is simply no match."""
        try:
            return self._hasher.verify(password_hash, plain)
        except (VerificationError, InvalidHashError):
            return False

    @cached_property
    def stand_in_hash(self) -> str:
        """A hash of this profile's cost to check a password against when its username is unknown (made once)."""
        return self.hash(secrets.token_urlsafe(16))
