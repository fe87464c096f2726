"""The RabbitMQ server for tests: skip with the reason where it is absent, and a turn stream of the test's own.

The shared server's management API is not enabled, so a test never gets a virtual host of its own: it uses a
queue and exchange named after it (``kefu.test.<random>``) and deletes them, with their dead-letter queue, at the
end.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import pytest

from router.turn_stream import dead_letter_queue

RABBITMQ_URL = os.environ.get("KEFU_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def rabbitmq_server() -> str:
    """The test RabbitMQ's URL, or skip the test saying why there is none."""

    async def probe() -> None:
        connection = await aio_pika.connect(RABBITMQ_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as error:
        where = urlsplit(RABBITMQ_URL)
        pytest.skip(f"no RabbitMQ server at {where.hostname}:{where.port or 5672} ({type(error).__name__}: {error})")
    return RABBITMQ_URL


@dataclass(frozen=True)
class StreamQueues:
    """A turn stream of one test: publish to it as Rasa's Pika broker does, look into its queues."""

    url: str
    queue: str

    def publish(self, *messages: dict[str, Any] | bytes) -> None:
        """Each event (or raw body) as Rasa's broker sends it: persistent, through the fanout exchange, confirmed."""

        async def send(channel: aio_pika.abc.AbstractChannel) -> None:
            exchange = await self._declare(channel)
            for message in messages:
                body = message if isinstance(message, bytes) else json.dumps(message).encode()
                await exchange.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), "")

        self._run(send)

    def waiting(self) -> int:
        """Messages ready in the queue (not those a consumer holds unacknowledged)."""

        async def count(channel: aio_pika.abc.AbstractChannel) -> int:
            queue = await channel.declare_queue(self.queue, passive=True)
            return int(queue.declaration_result.message_count or 0)

        return self._run(count)

    def dead_letters(self) -> list[tuple[bytes, dict[str, Any]]]:
        """Body and headers of every message in the dead-letter queue, taken out of it."""

        async def take(channel: aio_pika.abc.AbstractChannel) -> list[tuple[bytes, dict[str, Any]]]:
            queue = await channel.declare_queue(dead_letter_queue(self.queue), durable=True)
            taken = []
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                taken.append((message.body, dict(message.headers)))
            return taken

        return self._run(take)

    def delete(self) -> None:
        """Remove the queues and the exchange."""

        async def remove(channel: aio_pika.abc.AbstractChannel) -> None:
            for name in (self.queue, dead_letter_queue(self.queue)):
                await channel.queue_delete(name)
            await channel.exchange_delete(self.queue)

        self._run(remove)

    async def _declare(self, channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractExchange:
        # As Rasa 3.6's PikaEventBroker declares them, so either may come first.
        exchange = await channel.declare_exchange(self.queue, type=aio_pika.ExchangeType.FANOUT)
        queue = await channel.declare_queue(self.queue, durable=True)
        await queue.bind(exchange, "")
        return exchange

    def _run(self, work: Any) -> Any:
        async def connected() -> Any:
            connection = await aio_pika.connect(self.url, timeout=10)
            async with connection:
                return await work(await connection.channel())

        return asyncio.run(connected())


@contextmanager
def private_turn_stream(url: str) -> Iterator[StreamQueues]:
    """A turn stream with its queue and exchange declared, deleted on leaving."""
    stream = StreamQueues(url, f"kefu.test.{uuid.uuid4().hex[:12]}")
    stream.publish()
    try:
        yield stream
    finally:
        stream.delete()
