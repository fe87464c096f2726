"""The tokens kefu's own processes show each other: Rasa's API token and the action server's token.

Production sets ``KEFU_RASA_TOKEN`` and ``KEFU_ACTION_TOKEN`` (Rasa and the action server refuse to start without
them). Development makes up each one that is unset at random, once, into ``var/internal_tokens.json`` (readable by
its owner only), so every process started from the checkout agrees: ``kefu run``'s children, and a ``kefu model
promote`` typed in another terminal.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.settings import Settings

TOKENS_FILE = "internal_tokens.json"


def with_internal_tokens(settings: Settings) -> Settings:
    """``settings`` with the development tokens filled in where unset; production's are left as they are."""
    if settings.env != "development" or (settings.rasa_token and settings.action_token):
        return settings
    stored = development_tokens(settings.var_dir / TOKENS_FILE)
    return settings.copy(
        update={
            "rasa_token": settings.rasa_token or stored["rasa"],
            "action_token": settings.action_token or stored["action"],
        }
    )


def development_tokens(path: Path) -> dict[str, str]:
    """The tokens kept at ``path``, made on first use; processes starting together all read the same ones."""
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump({"rasa": secrets.token_urlsafe(32), "action": secrets.token_urlsafe(32)}, file)
    try:
        os.link(draft, path)  # publishes a complete file, and only if no other process published one first
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return json.loads(path.read_text(encoding="utf-8"))
