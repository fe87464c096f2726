"""The RabbitMQ turn stream: Rasa's own Pika event broker publishes every event, ``kefu turns consume`` logs the turns.

With ``KEFU_RABBITMQ_URL`` each Rasa publishes its events as persistent messages, with publisher confirms, through
a fanout exchange into the durable queue ``KEFU_RABBITMQ_QUEUE`` (``router/runner.py`` writes that
``event_broker``), and answers a turn once RabbitMQ has confirmed its events (``bot/pika_broker.py``), so a Rasa
killed with -9 right after answering has handed the turn over. The consumer writes a batch of messages in one
transaction through :class:`~router.turn_log.TurnLog`, idempotent by ``event_key``, and acknowledges the batch
only after the commit:

- a consumer killed mid-batch leaves its messages unacknowledged: RabbitMQ delivers them again, to it or to another
  consumer, and the turns already committed are not stored twice;
- while the CRM is down the batch is retried with backoff and nothing is acknowledged: the messages wait in the
  queue, and a lost RabbitMQ connection is reconnected with backoff;
- a message that is not a Rasa event, or whose turn the CRM can never store, is logged and copied to
  ``<queue>.dead`` with the reason in its headers (RabbitMQ confirms the copy), and only then acknowledged: it
  neither blocks the queue nor is lost. Rasa declares the queue itself, without arguments, and RabbitMQ refuses a
  second declaration whose arguments differ, so the dead-letter queue cannot be a queue argument.

A turn RabbitMQ could not take in time (it is away, or slower than the confirm timeout) does not hold the answer
back: Rasa publishes it once reconnected, and if Rasa dies first it is still in the tracker store, where
``kefu worker``'s turn catch-up (``router/turn_catch_up.py``) logs it under the same ``event_key``.

The messages hold the customers' raw text (redaction happens as the CRM stores a turn), so RabbitMQ must stay on the
internal network; nothing here logs a message's content.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError, DeliveryError

from router.bootstrap import Kefu
from router.crm.interactions import Turn
from router.crm.rasa_turns import TurnTranslator
from router.turn_log import TurnLog, write_or_isolate

log = logging.getLogger(__name__)

BATCH_SIZE = 100
# Lets a burst of events gather so one transaction stores them together, as the in-process broker does.
FLUSH_INTERVAL_S = 0.2
MAX_BACKOFF_S = 10.0
DEAD_LETTER_SUFFIX = ".dead"
REASON_HEADER = "x-kefu-dead-letter-reason"
# How often a consumer waiting for messages looks whether RabbitMQ closed its channel or it is asked to stop.
_IDLE_CHECK_S = 1.0
_RABBITMQ_GONE = (AMQPError, ChannelInvalidStateError, OSError, asyncio.TimeoutError)


class NotARasaEvent(ValueError):
    """A message on the turn stream that is not a Rasa event as Rasa's Pika broker publishes it."""


def rasa_event(body: bytes) -> dict[str, Any]:
    """The event a message carries: one JSON object with the event's type and its sender."""
    try:
        event = json.loads(body)
    except ValueError as error:  # not UTF-8, or not JSON
        raise NotARasaEvent("it is not JSON") from error
    if not isinstance(event, dict) or not isinstance(event.get("event"), str) or not event.get("sender_id"):
        raise NotARasaEvent("it is not a Rasa event (a JSON object with 'event' and 'sender_id')")
    return event


def dead_letter_queue(queue: str) -> str:
    """Where the messages of ``queue`` go that cannot be logged."""
    return f"{queue}{DEAD_LETTER_SUFFIX}"


@dataclass(frozen=True)
class _Subscription:
    """A channel consuming the queue, and where its deliveries wait to be taken in batches."""

    channel: AbstractChannel
    inbox: asyncio.Queue[AbstractIncomingMessage]


class TurnConsumer:
    """Consumes the turn stream into the CRM: batches written once, acknowledged after the commit."""

    def __init__(
        self,
        kefu: Kefu,
        *,
        batch_size: int = BATCH_SIZE,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        if not kefu.settings.rabbitmq_url:
            raise ValueError("KEFU_RABBITMQ_URL is not set: there is no turn stream to consume")
        self._url = kefu.settings.rabbitmq_url
        self.queue = kefu.settings.rabbitmq_queue
        self._turn_log = TurnLog(kefu)
        self._translator = TurnTranslator()
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_backoff_s = max_backoff_s

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, reconnecting with backoff whenever RabbitMQ is away or refuses us."""
        backoff_s = 0.1
        while not stop.is_set():
            consuming = False
            try:
                async with await aio_pika.connect(self._url, timeout=10) as connection:
                    subscription = await self._subscribe(connection)
                    consuming = True
                    await self._consume(subscription, stop)
            except _RABBITMQ_GONE as error:
                # A connection that served starts the backoff again; one refused at once (say, by a queue declared
                # otherwise) does not, so it is not retried in a tight loop.
                backoff_s = 0.1 if consuming else min(backoff_s * 2, self._max_backoff_s)
                # Whatever was not acknowledged goes back to the queue with the connection.
                log.warning("turn stream: RabbitMQ unavailable (%s); reconnecting in %.1f s", _reason(error), backoff_s)
                await _wait(stop, backoff_s)

    async def _subscribe(self, connection: aio_pika.abc.AbstractConnection) -> _Subscription:
        # Publisher confirms (aio-pika's default): a dead letter is acknowledged only once RabbitMQ holds its copy.
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._batch_size)
        queue = await channel.declare_queue(self.queue, durable=True)
        await channel.declare_queue(dead_letter_queue(self.queue), durable=True)
        inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        await queue.consume(inbox.put)
        log.info("turn stream: consuming %s", self.queue)
        return _Subscription(channel, inbox)

    async def _consume(self, subscription: _Subscription, stop: asyncio.Event) -> None:
        channel, inbox = subscription.channel, subscription.inbox
        while batch := await self._next_batch(inbox, channel, stop):
            await self._store(batch, channel, stop)

    async def _next_batch(
        self, inbox: asyncio.Queue[AbstractIncomingMessage], channel: AbstractChannel, stop: asyncio.Event
    ) -> list[AbstractIncomingMessage]:
        """The next messages, up to a batch or what came within the flush interval; none once ``stop`` is set."""
        first = None
        while first is None:
            if stop.is_set():
                return []
            if channel.is_closed:
                raise ConnectionError("RabbitMQ closed the channel")
            try:
                first = await asyncio.wait_for(inbox.get(), _IDLE_CHECK_S)
            except asyncio.TimeoutError:
                continue
        batch = [first]
        deadline = asyncio.get_running_loop().time() + self._flush_interval_s
        while len(batch) < self._batch_size:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                batch.append(await asyncio.wait_for(inbox.get(), max(remaining, 0)))
            except asyncio.TimeoutError:
                break
        return batch

    async def _store(self, batch: list[AbstractIncomingMessage], channel: AbstractChannel, stop: asyncio.Event) -> None:
        """Store the batch's turns, then acknowledge it; unacknowledged if ``stop`` comes while the CRM is away."""
        deliveries: list[tuple[AbstractIncomingMessage, Turn]] = []
        for message in batch:
            try:
                turn = self._translator.translate(rasa_event(message.body))
            except NotARasaEvent as error:
                await self._dead_letter(channel, message, str(error))
                continue
            except Exception as error:
                # The error's text may quote the event (its customer's words): only its kind is logged.
                await self._dead_letter(channel, message, f"its turn cannot be read ({type(error).__name__})")
                continue
            if turn is not None:  # slots, actions and the other events are not something said
                deliveries.append((message, turn))
        backoff_s, failures = 0.1, 0
        while deliveries:
            try:
                unstorable = await asyncio.to_thread(write_or_isolate, self._write, deliveries)
            except Exception:
                # write_or_isolate lets only transient errors out: the CRM is away, so the batch waits unacknowledged.
                failures += 1
                if failures == 1 or backoff_s >= self._max_backoff_s:
                    log.warning(
                        "turn stream: CRM unavailable; %d messages wait unacknowledged in %s, retrying",
                        len(batch),
                        self.queue,
                        exc_info=True,
                    )
                if await _wait(stop, backoff_s):
                    return
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
                continue
            for (message, turn), refusal in unstorable:
                log.error("turn stream: turn %s cannot be stored", turn.event_key, exc_info=refusal)
                await self._dead_letter(channel, message, f"the CRM cannot store its turn ({type(refusal).__name__})")
            break
        await batch[-1].ack(multiple=True)

    def _write(self, deliveries: Sequence[tuple[AbstractIncomingMessage, Turn]]) -> None:
        self._turn_log.write([turn for _, turn in deliveries])

    async def _dead_letter(self, channel: AbstractChannel, message: AbstractIncomingMessage, reason: str) -> None:
        dead_letters = dead_letter_queue(self.queue)
        log.error(
            "turn stream: message %s of %s: %s; moved to %s", message.delivery_tag, self.queue, reason, dead_letters
        )
        await channel.default_exchange.publish(
            aio_pika.Message(
                message.body,
                headers={**message.headers, REASON_HEADER: reason},
                content_type=message.content_type,
                app_id=message.app_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=dead_letters,
        )


def _reason(error: BaseException) -> str:
    """What went wrong with RabbitMQ, without the message a refused delivery quotes (a customer's words)."""
    return type(error).__name__ if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` unless ``stop`` comes first; whether it came."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True


def consume_turns(kefu: Kefu) -> None:
    """Run a :class:`TurnConsumer` until SIGTERM or SIGINT; what is not yet stored stays in the queue."""

    async def consume() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await TurnConsumer(kefu).run(stop)

    asyncio.run(consume())
