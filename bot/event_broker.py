"""Rasa event broker that logs every customer and bot turn to the CRM without ever slowing or breaking a reply.

``publish`` only turns the event into a :class:`~router.crm.interactions.Turn` and appends it to an in-memory
buffer; a background thread writes the buffer in batches and keeps retrying, with backoff, while the database is
down. Writes are idempotent by ``event_key``, so a batch that was committed but not acknowledged is not doubled.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.exc import InterfaceError, OperationalError

from router.bootstrap import Kefu, bootstrap
from router.crm.interactions import RecentConversations, Turn, record_turns
from router.crm.models import Channel, Speaker
from router.recent import RecentlyUsed
from router.routing.returning import reopen_on_customer_turns
from router.settings import Settings, get_settings

logger = logging.getLogger(__name__)

_INPUT_CHANNELS = {"rest": Channel.rest, "telegram": Channel.telegram, "webchat": Channel.web, "web": Channel.web}
# Remembering the last message time and language of this many senders is plenty for latency and costs little.
_REMEMBERED_SENDERS = 10_000


def event_key(event: dict[str, Any]) -> str:
    """Stable identity of a Rasa event, so the same event published or written twice is stored once."""
    identity = "\x00".join(
        str(part)
        for part in (
            event.get("sender_id"),
            event.get("event"),
            event.get("message_id") or repr(event.get("timestamp")),
            event.get("text"),
        )
    )
    return f"rasa:{hashlib.sha256(identity.encode('utf-8', 'surrogatepass')).hexdigest()}"


class TurnTranslator:
    """Turns Rasa ``user`` and ``bot`` events into log turns, remembering per sender what latency needs.

    Only latency is remembered: a turn's user and bot events are published together by the process that ran the
    turn, whichever replica that is. Anything that spans turns is read from the CRM.
    """

    def __init__(self) -> None:
        self._last_user_message: RecentlyUsed[tuple[float, str | None]] = RecentlyUsed(_REMEMBERED_SENDERS)

    def translate(self, event: dict[str, Any]) -> Turn | None:
        """The turn an event stands for, or None for events that are not something said (slots, actions)."""
        kind = event.get("event")
        if kind == "user":
            return self._user_turn(event)
        if kind == "bot":
            return self._bot_turn(event)
        return None

    def _user_turn(self, event: dict[str, Any]) -> Turn:
        sender_id = str(event.get("sender_id"))
        parse_data = event.get("parse_data") or {}
        intent = parse_data.get("intent") or {}
        entities = [dict(entity) for entity in parse_data.get("entities") or []]
        metadata = event.get("metadata") or {}
        language = next((e.get("value") for e in entities if e.get("entity") == "language"), None)
        language = language or metadata.get("language")
        timestamp = float(event.get("timestamp") or time.time())
        self._last_user_message.keep(sender_id, (timestamp, language))
        intent_name = intent.get("name")
        # The router's injected intents (a ticket resolved) are not something the customer typed.
        speaker = Speaker.system if intent_name and intent_name.startswith("EXTERNAL_") else Speaker.customer
        return Turn(
            event_key=event_key(event),
            sender_id=sender_id,
            speaker=speaker,
            text=event.get("text") or "",
            created_at=datetime.fromtimestamp(timestamp, timezone.utc),
            channel=_INPUT_CHANNELS.get(event.get("input_channel") or ""),
            language=language,
            intent=intent_name,
            confidence=intent.get("confidence"),
            entities=[e for e in entities if e.get("entity") != "language"],
        )

    def _bot_turn(self, event: dict[str, Any]) -> Turn:
        sender_id = str(event.get("sender_id"))
        timestamp = float(event.get("timestamp") or time.time())
        user_timestamp, language = self._last_user_message.get(sender_id, (None, None))
        latency_ms = (timestamp - user_timestamp) * 1000 if user_timestamp is not None else None
        data = event.get("data") or {}
        return Turn(
            event_key=event_key(event),
            sender_id=sender_id,
            speaker=Speaker.bot,
            text=event.get("text") or "",
            created_at=datetime.fromtimestamp(timestamp, timezone.utc),
            language=language,
            latency_ms=latency_ms,
            buttons=data.get("buttons") or None,
            response=(event.get("metadata") or {}).get("utter_action"),
        )


class BufferedTurnWriter:
    """A background thread that writes buffered turns in batches and retries with backoff until they are stored."""

    def __init__(
        self,
        write: Callable[[Sequence[Turn]], None],
        *,
        batch_size: int = 100,
        flush_interval_s: float = 0.2,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._write = write
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_backoff_s = max_backoff_s
        self._pending: deque[Turn] = deque()
        self._changed = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self.failed_attempts = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="kefu-interaction-writer", daemon=True)
        self._thread.start()

    def put(self, turn: Turn) -> None:
        """Queue a turn; returns at once whatever the database is doing."""
        with self._changed:
            self._pending.append(turn)
            self._changed.notify_all()

    @property
    def pending(self) -> int:
        """Turns not yet stored (buffered or being written)."""
        with self._changed:
            return len(self._pending) + self._in_flight

    def flush(self, timeout_s: float) -> bool:
        """Wait until every queued turn is stored; False if ``timeout_s`` ran out first."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            self._changed.notify_all()
            while self._pending or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def close(self, timeout_s: float = 10.0) -> bool:
        """Store what is left (within ``timeout_s``) and stop the thread; False if turns were left unstored."""
        stored = self.flush(timeout_s)
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(timeout=1.0)
        if not stored:
            logger.error("Stopping with %d interactions not written to the CRM.", self.pending)
        return stored

    def _take_batch(self) -> list[Turn] | None:
        with self._changed:
            while not self._pending and not self._stopping:
                self._changed.wait()
            if self._stopping:
                return None
            # Let a burst of events gather so one transaction stores them together.
            if len(self._pending) < self._batch_size:
                self._changed.wait(self._flush_interval_s)
            batch = [self._pending.popleft() for _ in range(min(self._batch_size, len(self._pending)))]
            self._in_flight = len(batch)
            return batch

    def _run(self) -> None:
        backoff_s = 0.1
        while (batch := self._take_batch()) is not None:
            while True:
                try:
                    self._write(batch)
                    break
                except Exception as error:
                    if not is_transient(error):
                        self._write_one_by_one(batch)
                        break
                    self.failed_attempts += 1
                    if self.failed_attempts == 1 or backoff_s >= self._max_backoff_s:
                        logger.warning(
                            "CRM unavailable; %d interactions buffered, retrying.", self.pending, exc_info=True
                        )
                    with self._changed:
                        if self._stopping:
                            self._pending.extendleft(reversed(batch))
                            self._in_flight = 0
                            return
                        self._changed.wait(backoff_s)
                    backoff_s = min(backoff_s * 2, self._max_backoff_s)
            backoff_s = 0.1
            with self._changed:
                self._in_flight = 0
                self._changed.notify_all()

    def _write_one_by_one(self, batch: list[Turn]) -> None:
        # One unstorable turn must not hold back every turn after it; only that turn is given up.
        for index, turn in enumerate(batch):
            try:
                self._write([turn])
            except Exception as error:
                if is_transient(error):
                    with self._changed:
                        self._pending.extendleft(reversed(batch[index:]))
                    return
                self.dropped += 1
                logger.error("Interaction %s cannot be stored; dropped.", turn.event_key, exc_info=True)


def is_transient(error: Exception) -> bool:
    """Whether a failed write may succeed later (database down, locked, connection cut) and so is retried."""
    return isinstance(error, OperationalError | InterfaceError) or bool(getattr(error, "connection_invalidated", False))


class CrmEventBroker(EventBroker):
    """Rasa's ``event_broker`` (``type: bot.event_broker.CrmEventBroker``): every turn into CRM ``interactions``."""

    def __init__(self, kefu: Kefu, **writer_options: Any) -> None:
        self._kefu = kefu
        self._translator = TurnTranslator()
        self._conversations = RecentConversations()
        self.writer = BufferedTurnWriter(self._store, **writer_options)

    @classmethod
    async def from_endpoint_config(
        cls, broker_config: EndpointConfig, event_loop: asyncio.AbstractEventLoop | None = None
    ) -> CrmEventBroker:
        """Rasa's constructor: the database comes from kefu's settings unless endpoints.yml gives a ``url``."""
        settings = get_settings()
        if broker_config.url:
            settings = Settings(**{**settings.dict(), "database_url": broker_config.url})
        options = {
            key: broker_config.kwargs[key] for key in ("batch_size", "flush_interval_s") if key in broker_config.kwargs
        }
        return cls(bootstrap(settings), **options)

    def publish(self, event: dict[str, Any]) -> None:
        """Buffer the event's turn, if it is one; never raises into Rasa's reply path."""
        try:
            turn = self._translator.translate(event)
        except Exception:
            logger.exception("Could not read Rasa event %r; not logged.", event.get("event"))
            return
        if turn is not None:
            self.writer.put(turn)

    async def close(self) -> None:
        """On shutdown: store what is buffered (the thread keeps retrying for a while) and release the pool."""
        await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        self._kefu.dispose()

    def _store(self, turns: Sequence[Turn]) -> None:
        with self._kefu.uow() as uow:
            reopen_on_customer_turns(uow.session, record_turns(uow.session, turns, self._conversations))
            uow.commit()
