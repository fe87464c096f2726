"""Rasa's own Pika event broker, with a turn answered only once RabbitMQ has confirmed its events.

Rasa 3.6's ``PikaEventBroker`` publishes each event from a background task (persistent, with publisher confirms)
and Rasa answers the customer without waiting for it: a Rasa killed with -9 right after answering takes the turn's
events along. :class:`~bot.tracker_store.KefuTrackerStore` therefore waits, after saving a turn and before Rasa
answers, until RabbitMQ has confirmed (or refused) what was published: a turn the customer saw answered is in the
durable queue. A publish that fails or takes longer than ``confirm_timeout_s`` does not hold the answer back: Rasa
keeps the event and publishes it once reconnected, and ``kefu worker``'s catch-up logs it from the tracker store.

``router/runner.py`` writes the ``event_broker`` entry (``type: bot.pika_broker.ConfirmedPikaEventBroker``);
``router/turn_stream.py`` consumes the queue.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rasa.core.brokers.pika import PikaEventBroker

# RabbitMQ confirms a persistent message once it is on disk, in milliseconds; longer means it is in trouble.
CONFIRM_TIMEOUT_S = 5.0


class ConfirmedPikaEventBroker(PikaEventBroker):
    """``PikaEventBroker`` whose publishes a turn can wait for (:meth:`confirmed`)."""

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
