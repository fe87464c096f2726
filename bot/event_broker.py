"""Rasa event broker that logs every customer and bot turn to the CRM without ever slowing or breaking a reply.

``publish`` only turns the event into a :class:`~router.crm.interactions.Turn` and appends it to an in-memory
buffer; a background thread writes the buffer in batches and keeps retrying, with backoff, while the database is
down. Writes are idempotent by ``event_key``, so a batch that was committed but not acknowledged is not doubled.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.exc import InterfaceError, OperationalError

from router.bootstrap import Kefu, bootstrap
from router.crm.interactions import RecentConversations, Turn, record_turns
from router.crm.rasa_turns import TurnTranslator
from router.routing.policy import routing_policy
from router.routing.returning import reopen_on_customer_turns
from router.settings import Settings, get_settings

logger = logging.getLogger(__name__)


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
        policy = routing_policy(self._kefu.settings.data_dir)
        with self._kefu.uow() as uow:
            reopen_on_customer_turns(uow.session, record_turns(uow.session, turns, self._conversations), policy)
            uow.commit()
