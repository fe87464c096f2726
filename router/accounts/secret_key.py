"""The key that signs session cookies and API tokens: checked for strength, generated once for development."""

from __future__ import annotations

import math
import os
import secrets
from collections import Counter
from pathlib import Path

from router.errors import KefuError
from router.settings import Settings

# Published in earlier versions as the default: anyone could sign a cookie for user 1 with it.
PUBLISHED_KEYS = frozenset({"kefu-dev-secret-change-me"})
MIN_LENGTH = 32
# Few distinct characters: random keys of 32+ characters (hex or URL-safe) score 90 bits and more.
MIN_ENTROPY_BITS = 80
# A repeated word: an 8-character sequence recurs in fewer than one in a million random keys of 32-128 characters.
REPEAT_LENGTH = 8
DEVELOPMENT_KEY_FILE = "secret_key"
GENERATE_HINT = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


class UnsafeSecretKey(KefuError):
    """The configured secret key would let someone forge sessions or tokens."""


def estimated_entropy_bits(key: str) -> float:
    """Bits of entropy the key's own character frequencies suggest (a screen for lazy keys, not a proof)."""
    counts = Counter(key)
    return -sum(count * math.log2(count / len(key)) for count in counts.values())


def has_repeat(key: str, length: int = REPEAT_LENGTH) -> bool:
    """Whether some ``length``-character sequence occurs twice in ``key``."""
    seen: set[str] = set()
    for start in range(len(key) - length + 1):
        part = key[start : start + length]
        if part in seen:
            return True
        seen.add(part)
    return False


def weakness(key: str) -> str | None:
    """Why ``key`` is not fit to sign production sessions, or None when it is."""
    if not key:
        return "KEFU_SECRET_KEY is not set"
    if key in PUBLISHED_KEYS:
        return "KEFU_SECRET_KEY is the old published default"
    if len(key) < MIN_LENGTH:
        return f"KEFU_SECRET_KEY is {len(key)} characters long; it needs at least {MIN_LENGTH}"
    if estimated_entropy_bits(key) < MIN_ENTROPY_BITS or has_repeat(key):
        return "KEFU_SECRET_KEY is too predictable (few distinct characters or a repeated sequence)"
    return None


def development_key(var_dir: Path) -> str:
    """This checkout's own random key in ``var/secret_key`` (mode 0600), made on first use and reused after."""
    path = var_dir / DEVELOPMENT_KEY_FILE
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        draft = var_dir / f".{DEVELOPMENT_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)  # atomic and never overwrites: processes starting together all read one key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text(encoding="utf-8").strip()
    if weakness(key):
        raise UnsafeSecretKey(f"{path} does not hold a usable key; delete it and kefu makes a new one")
    return key


def signing_key(settings: Settings) -> str:
    """The key this process signs with: the configured one, else (development only) the generated one."""
    if settings.secret_key in PUBLISHED_KEYS:
        raise UnsafeSecretKey(
            "KEFU_SECRET_KEY is the old published default, which anyone can sign cookies with: "
            f"unset it (development makes its own) or set a random one ({GENERATE_HINT})"
        )
    if settings.secret_key:
        if settings.env == "production" and weakness(settings.secret_key):
            raise UnsafeSecretKey(f"KEFU_ENV=production: {weakness(settings.secret_key)} ({GENERATE_HINT})")
        return settings.secret_key
    if settings.env == "production":
        raise UnsafeSecretKey(f"KEFU_ENV=production needs KEFU_SECRET_KEY, a random string ({GENERATE_HINT})")
    return development_key(settings.var_dir)
