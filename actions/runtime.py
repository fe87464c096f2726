"""What every action shares: the action server's one kefu, the customer's language, and failing politely."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from router.bootstrap import Kefu, bootstrap
from router.db import DatabaseError
from router.errors import KefuError
from router.settings import get_settings

logger = logging.getLogger(__name__)

_process_kefu: Kefu | None = None
_process_kefu_lock = threading.Lock()

# Said when the CRM cannot be reached: the bot must still answer rather than go silent (zh/en in domain.yml).
SERVICE_UNAVAILABLE = "utter_service_unavailable"

ActionRun = TypeVar("ActionRun", bound=Callable[..., list[dict[str, Any]]])


def process_kefu() -> Kefu:
    """The action server's kefu, built on first use so importing actions never touches the database."""
    global _process_kefu
    with _process_kefu_lock:
        if _process_kefu is None:
            _process_kefu = bootstrap(get_settings())
        return _process_kefu


class UsesKefu:
    """Mixin for actions: the process's kefu, or the one a test passes in."""

    def __init__(self, kefu: Kefu | None = None) -> None:
        self._kefu = kefu

    @property
    def kefu(self) -> Kefu:
        """The kefu this action's service calls run on."""
        return self._kefu or process_kefu()


def customer_language(tracker: Tracker) -> str:
    """ "zh" or "en": the language slot the NLU fills from each message (Chinese by default)."""
    return "en" if tracker.get_slot("language") == "en" else "zh"


def latest_text(tracker: Tracker) -> str:
    """What the customer just wrote ("" for button payloads and empty messages)."""
    text = (tracker.latest_message or {}).get("text") or ""
    return "" if text.startswith("/") else text


def apologise_when_unavailable(run: ActionRun) -> ActionRun:
    """Turn a CRM outage, a service error or a bug inside an action into a polite reply instead of silence."""

    @functools.wraps(run)
    def guarded(self: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[dict[str, Any]]:
        try:
            return run(self, dispatcher, tracker, domain)
        except Exception as error:
            # CRM down, a service refusing (KefuError) or a bug: the customer still gets an answer, the log the cause.
            expected = isinstance(error, DatabaseError | KefuError)
            logger.exception("%s %s for %s", self.name(), "failed" if expected else "crashed", tracker.sender_id)
            dispatcher.utter_message(response=SERVICE_UNAVAILABLE)
            return []

    return guarded  # type: ignore[return-value]
