"""Rasa's own Pika event broker, with a turn answered only once RabbitMQ has confirmed its events.

Rasa 3.6's ``PikaEventBroker`` publishes each event from a background task (persistent, with publisher confirms)
and Rasa answers the customer without waiting for it: a Rasa killed with -9 right after answering takes the turn's
events along. :class:`~bot.tracker_store.KefuTrackerStore` therefore waits, after saving a turn and before Rasa
answers, until RabbitMQ has confirmed (or refused) what was published: a turn the customer saw answered is in the
durable queue. A publish that fails or takes longer than ``confirm_timeout_s`` does not hold the answer back: Rasa
keeps the event and publishes it once reconnected, and ``kefu worker``'s catch-up logs it from the tracker store.

Rasa's broker logs every event it publishes (at debug) or fails to publish (at error) with its text; this one names
only the event's kind, since the customers' words are kept out of kefu's logs.

``router/runner.py`` writes the ``event_broker`` entry (``type: bot.pika_broker.ConfirmedPikaEventBroker``);
``router/turn_stream.py`` consumes the queue.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from rasa.core.brokers.pika import PikaEventBroker

logger = logging.getLogger(__name__)

# RabbitMQ confirms a persistent message once it is on disk, in milliseconds; longer means it is in trouble.
CONFIRM_TIMEOUT_S = 5.0


class ConfirmedPikaEventBroker(PikaEventBroker):
    """``PikaEventBroker`` whose publishes a turn can wait for (:meth:`confirmed`), logged without their text."""

    def __init__(self, *args: Any, confirm_timeout_s: float = CONFIRM_TIMEOUT_S, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._confirm_timeout_s = float(confirm_timeout_s)

    async def confirmed(self) -> None:
        """Wait until every event published so far is confirmed or failed, at most ``confirm_timeout_s``."""
        # Rasa keeps its publishing tasks here (a task must be referenced to run to its end); bot.patches pins the
        # Rasa series this attribute was checked against.
        in_flight = list(self._background_tasks)
        if in_flight:
            await asyncio.wait(in_flight, timeout=self._confirm_timeout_s)

    async def _publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Rasa's publish (kept for later when RabbitMQ does not take it), without the event's text in the log."""
        if self._exchange is None:
            return
        try:
            await self._exchange.publish(self._message(event, headers), "")
        except Exception as error:
            # Not the error's text either: a refused delivery quotes the message.
            logger.warning(
                "RabbitMQ did not take a %r event (%s); kept to publish once reconnected",
                event.get("event"),
                type(error).__name__,
            )
            if self.should_keep_unpublished_messages:
                self._unpublished_events.append(event)
            if self.raise_on_failure:
                raise
