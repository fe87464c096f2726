"""Password hashing for console logins (argon2id, with rehash when the parameters get stronger)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def generate_password() -> str:
    """A random password to hand to someone who must replace it at first login (96 bits)."""
    return secrets.token_urlsafe(12)


def hash_password(plain: str) -> str:
    """An argon2id hash to store instead of the password."""
    return _hasher.hash(plain)


def verify_password(password_hash: str, plain: str) -> bool:
    """Whether ``plain`` is the password behind ``password_hash``; a malformed hash is simply no match."""
    try:
        return _hasher.verify(password_hash, plain)
    except (VerificationError, InvalidHashError):
        return False
