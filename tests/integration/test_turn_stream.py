"""The RabbitMQ turn stream: Rasa's Pika broker publishes, `kefu turns consume` logs every turn exactly once, through
a consumer killed with -9, a CRM that is down and a Rasa killed right after answering; what is not a Rasa event is
dead-lettered."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aio_pika
import pytest
import sqlalchemy as sa
from rasa.utils.endpoints import EndpointConfig

from bot.pika_broker import ConfirmedPikaEventBroker
from router.bootstrap import Kefu
from router.crm.models import ChannelIdentity, Interaction, Speaker
from router.crm.rasa_turns import TurnTranslator
from router.runner import event_broker_endpoint
from router.turn_log import TurnLog
from router.turn_stream import REASON_HEADER, TurnConsumer, dead_letter_queue
from tests.support.cli import KEFU
from tests.support.crm import make_kefu
from tests.support.databases import private_postgres, private_postgres_missing
from tests.support.published_events import bot_event, user_event
from tests.support.rabbitmq import StreamQueues, private_turn_stream, rabbitmq_server
from tests.support.rasa_stack import PROJECT_ROOT, rasa_env, start_stack

DEADLINE_S = 60
PHONE = "13812345678"


@pytest.fixture
def stream() -> Iterator[StreamQueues]:
    """A turn stream (queue, exchange, dead letters) of this test's own on the test RabbitMQ."""
    with private_turn_stream(rabbitmq_server()) as queues:
        yield queues


def eventually(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.05)


def logged(kefu: Kefu, sender_id: str | None = None) -> list[tuple[Speaker, str]]:
    """(speaker, text) of the logged turns (of one sender), in the order said."""
    query = sa.select(Interaction.speaker, Interaction.text).order_by(Interaction.created_at, Interaction.id)
    if sender_id is not None:
        query = query.join(ChannelIdentity, ChannelIdentity.customer_id == Interaction.customer_id).where(
            ChannelIdentity.sender_id == sender_id
        )
    with kefu.uow() as uow:
        return [(speaker, text) for speaker, text in uow.session.execute(query).all()]


def count_logged(kefu: Kefu) -> int:
    """Interactions stored, or -1 while the CRM cannot be reached."""
    try:
        with kefu.uow() as uow:
            return int(uow.session.execute(sa.select(sa.func.count(Interaction.id))).scalar_one())
    except sa.exc.OperationalError:
        return -1


def conversation(sender_id: str, turns: int, start: float) -> list[dict]:
    """``turns`` question/answer pairs as Rasa publishes them, one second apart from ``start``."""
    events = []
    for index in range(turns):
        said_at = start + index
        events.append(user_event(sender_id, f"question {index}", "ask_faq", 0.8, "en", timestamp=said_at))
        events.append(bot_event(sender_id, f"answer {index}", delay_s=0.2, timestamp=said_at))
    return events


def said(events: list[dict]) -> list[tuple[Speaker, str]]:
    """What the log should hold for these published events."""
    return [(Speaker.customer if e["event"] == "user" else Speaker.bot, e["text"]) for e in events]


@contextmanager
def consumer_process(database_url: str, stream: StreamQueues, work_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`kefu turns consume` as `kefu run` starts it, on this CRM and stream; SIGKILLed on leaving if still alive."""
    work_dir.mkdir(parents=True, exist_ok=True)
    env = rasa_env(
        KEFU_DATABASE_URL=database_url,
        KEFU_RABBITMQ_URL=stream.url,
        KEFU_RABBITMQ_QUEUE=stream.queue,
        KEFU_VAR_DIR=str(work_dir / "var"),
    )
    with (work_dir / "consumer.log").open("ab") as log:
        process = subprocess.Popen(
            [*KEFU, "turns", "consume"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def stop_gracefully(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as honcho stops it, and wait until it exits."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


@contextmanager
def stream_kefu(database_url: str, stream: StreamQueues, tmp_path: Path) -> Iterator[Kefu]:
    """A kefu on a migrated CRM whose settings name the test's turn stream, disposed of on leaving."""
    kefu = make_kefu(database_url, tmp_path, rabbitmq_url=stream.url, rabbitmq_queue=stream.queue)
    try:
        yield kefu
    finally:
        kefu.dispose()


@contextmanager
def consumer_thread(kefu: Kefu) -> Iterator[TurnConsumer]:
    """A consumer running in this process (so its log lines are captured), stopped on leaving."""
    consumer = TurnConsumer(kefu, flush_interval_s=0.05)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(consumer.run(stop),))
    thread.start()
    try:
        yield consumer
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


@pytest.mark.postgres
@pytest.mark.cluster  # a consumer process killed -9: a fault test of several processes
def test_a_consumer_killed_mid_batch_leaves_its_batch_to_be_delivered_again_and_nothing_is_doubled(
    postgres_url: str, stream: StreamQueues, tmp_path: Path
) -> None:
    kefu = make_kefu(postgres_url, tmp_path)
    events = [e for index in range(20) for e in conversation(f"killed-{index}", 50, time.time() - 3600)]
    stream.publish(*events)
    try:
        with consumer_process(postgres_url, stream, tmp_path / "first") as consumer:
            eventually(lambda: count_logged(kefu) > 0, "the consumer logs its first batch")
            consumer.send_signal(signal.SIGKILL)
            consumer.wait(timeout=30)
        at_kill = count_logged(kefu)
        assert 0 < at_kill < len(events), "the consumer should have been killed with turns still to write"
        # Acknowledged are at most the committed ones: the rest, and a committed batch the consumer had no time to
        # acknowledge, go back to the queue.
        eventually(
            lambda: stream.waiting() >= len(events) - at_kill, "RabbitMQ takes back the dead consumer's messages"
        )
        with consumer_process(postgres_url, stream, tmp_path / "second") as consumer:
            eventually(lambda: count_logged(kefu) >= len(events), "a new consumer logs the rest")
            stop_gracefully(consumer)
        assert count_logged(kefu) == len(events)
        for index in (0, 19):
            assert logged(kefu, f"killed-{index}") == said(conversation(f"killed-{index}", 50, 0))
        assert stream.waiting() == 0
        assert stream.dead_letters() == []
    finally:
        kefu.dispose()


def test_a_batch_committed_but_never_acknowledged_is_stored_once_when_delivered_again(
    database_url: str, stream: StreamQueues, tmp_path: Path
) -> None:
    with stream_kefu(database_url, stream, tmp_path) as kefu:
        events = conversation("redelivered", 30, time.time() - 600)
        # What a consumer killed between its commit and its acknowledgement leaves: turns stored, still in the queue.
        translator = TurnTranslator()
        TurnLog(kefu).write([turn for event in events[:25] if (turn := translator.translate(event)) is not None])
        stream.publish(*events)
        with consumer_thread(kefu):
            eventually(lambda: stream.waiting() == 0 and len(logged(kefu)) >= len(events), "every turn is logged")
        assert logged(kefu, "redelivered") == said(events)


@pytest.mark.cluster  # a consumer process and a private PostgreSQL server stopped under it
def test_a_crm_that_is_down_leaves_the_turns_in_the_queue_until_it_is_back(
    stream: StreamQueues, tmp_path: Path
) -> None:
    if reason := private_postgres_missing():
        pytest.skip(reason)
    with private_postgres() as cluster:
        kefu = make_kefu(cluster.url, tmp_path)
        now = time.time()
        before, first_outage, second_outage = (
            conversation("outage", 2, now - 60),
            conversation("outage", 3, now - 50)[4:],
            conversation("outage", 2, now - 40),
        )
        stream.publish(*before)
        try:
            with consumer_process(cluster.url, stream, tmp_path / "consumer") as consumer:
                eventually(lambda: count_logged(kefu) == len(before), "the turns before the outage are logged")
                cluster.stop()
                stream.publish(*first_outage)
                log = tmp_path / "consumer" / "consumer.log"
                eventually(lambda: "CRM unavailable" in log.read_text(), "the consumer meets the outage")
                time.sleep(1)  # the outage lasts a few retries longer
                assert consumer.poll() is None, "the consumer must wait for the CRM, not exit"
                cluster.start()
                eventually(lambda: count_logged(kefu) == len(before + first_outage), "the waiting turns land")

                # Stopped while the CRM is down, the consumer acknowledges nothing: RabbitMQ keeps every turn.
                cluster.stop()
                stream.publish(*second_outage)
                eventually(lambda: log.read_text().count("CRM unavailable") >= 2, "the consumer meets the outage")
                stop_gracefully(consumer)
            assert stream.waiting() == len(second_outage)
            cluster.start()
            with consumer_process(cluster.url, stream, tmp_path / "next") as consumer:
                eventually(
                    lambda: count_logged(kefu) == len(before + first_outage + second_outage), "the kept turns land"
                )
                stop_gracefully(consumer)
            assert logged(kefu, "outage") == said(before + first_outage + second_outage)
            assert stream.waiting() == 0
        finally:
            kefu.dispose()


def test_what_is_not_a_rasa_event_is_dead_lettered_once_with_its_reason_and_never_logged_in_clear(
    sqlite_url: str, stream: StreamQueues, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with stream_kefu(sqlite_url, stream, tmp_path) as kefu:
        secret = f"my phone is {PHONE}"
        good = conversation("dead-letters", 1, time.time() - 10)
        malformed = [
            f"{secret} (not JSON)".encode(),
            json.dumps([secret]).encode(),
            json.dumps({"event": "user", "text": secret}).encode(),  # no sender
            json.dumps({**good[0], "text": secret, "timestamp": f"at {PHONE}", "message_id": "m2"}).encode(),
        ]
        caplog.set_level(logging.INFO, logger="router")
        stream.publish(good[0], *malformed, good[1])
        with consumer_thread(kefu):
            eventually(lambda: len(logged(kefu)) == 2 and stream.waiting() == 0, "the good turns are logged")
            eventually(
                lambda: caplog.text.count(f"moved to {dead_letter_queue(stream.queue)}") == 4,
                "each malformed message is reported",
            )
        assert logged(kefu) == said(good)
        dead = stream.dead_letters()
        assert [body for body, _ in dead] == malformed
        assert [headers[REASON_HEADER] for _, headers in dead] == [
            "it is not JSON",
            "it is not a Rasa event (a JSON object with 'event' and 'sender_id')",
            "it is not a Rasa event (a JSON object with 'event' and 'sender_id')",
            "its turn cannot be read (ValueError)",
        ]
        assert PHONE not in caplog.text
        assert stream.waiting() == 0, "nothing goes back to the queue to loop"


def test_a_consumer_rabbitmq_refuses_retries_with_backoff_and_consumes_once_it_may(
    sqlite_url: str, stream: StreamQueues, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An in-process Rasa earlier in this worker raises the root logger's level; the warnings are what is tested.
    caplog.set_level(logging.WARNING, logger="router")
    with stream_kefu(sqlite_url, stream, tmp_path) as kefu:

        async def redeclare(arguments: dict | None) -> None:
            async with await aio_pika.connect(stream.url) as connection:
                channel = await connection.channel()
                await channel.queue_delete(stream.queue)
                await channel.declare_queue(stream.queue, durable=True, arguments=arguments)

        # Not as Rasa declares it: RabbitMQ refuses the consumer's declaration.
        asyncio.run(redeclare({"x-max-length": 10}))
        events = conversation("refused-consumer", 2, time.time() - 10)
        with consumer_thread(kefu):
            refused = "RabbitMQ unavailable (ChannelPreconditionFailed"
            eventually(lambda: caplog.text.count(refused) >= 3, "the consumer retries")
            backoffs = re.findall(r"PreconditionFailed.*reconnecting in ([0-9.]+) s", caplog.text)
            assert [float(b) for b in backoffs[:3]] == [0.2, 0.4, 0.8], "each refusal waits longer"
            asyncio.run(redeclare(None))
            stream.publish(*events)
            eventually(lambda: logged(kefu) == said(events), "the consumer consumes once RabbitMQ lets it")


@pytest.mark.postgres
def test_a_turn_the_crm_refuses_is_dead_lettered_alone_and_the_rest_of_its_batch_stored(
    postgres_url: str, stream: StreamQueues, tmp_path: Path
) -> None:
    with stream_kefu(postgres_url, stream, tmp_path) as kefu:
        good = conversation("refused-turn", 1, time.time() - 10)
        refused = user_event("refused-turn", "sure?", "affirm", 0.9, "en", timestamp=time.time() - 5)
        refused["parse_data"]["intent"]["confidence"] = "very"  # PostgreSQL wants a number
        stream.publish(good[0], refused, good[1])
        with consumer_thread(kefu):
            eventually(lambda: len(logged(kefu)) == 2 and stream.waiting() == 0, "the storable turns are logged")
        assert logged(kefu) == said(good)
        dead = stream.dead_letters()
        assert [json.loads(body) for body, _ in dead] == [refused]
        assert dead[0][1][REASON_HEADER] == "the CRM cannot store its turn (DataError)"


@pytest.mark.rasa
def test_real_rasa_publishes_through_rabbitmq_and_a_rasa_killed_right_after_answering_loses_no_turn(
    stream: StreamQueues, tmp_path: Path
) -> None:
    crm_url = f"sqlite:///{tmp_path / 'kefu.db'}"
    kefu = make_kefu(crm_url, tmp_path)
    env = {"KEFU_RABBITMQ_URL": stream.url, "KEFU_RABBITMQ_QUEUE": stream.queue}
    stack = start_stack(crm_url, tmp_path / "stack", env=env)
    sender = f"stream-{uuid.uuid4().hex[:8]}"
    try:
        with consumer_process(crm_url, stream, tmp_path / "consumer") as consumer:
            replies = [stack.send(sender, text) for text in ("hello", "where is my parcel?")]
            expected = [
                turn
                for text, answer in zip(("hello", "where is my parcel?"), replies, strict=True)
                for turn in [(Speaker.customer, text)] + [(Speaker.bot, r["text"]) for r in answer]
            ]
            eventually(lambda: logged(kefu, sender) == expected, "Rasa's turns reach the CRM through RabbitMQ")
            stop_gracefully(consumer)
        assert logged(kefu, sender) == expected

        waiting = stream.waiting()
        answer = stack.send(sender, f"my number is {PHONE}")
        os.killpg(stack.processes[1].pid, signal.SIGKILL)
        stack.processes[1].wait(timeout=30)
        assert stream.waiting() >= waiting + 2, "the turn Rasa answered before it died is in the durable queue"
        with consumer_process(crm_url, stream, tmp_path / "after-kill") as consumer:
            last_turn = [(Speaker.customer, "my number is [phone]")] + [(Speaker.bot, r["text"]) for r in answer]
            eventually(lambda: logged(kefu, sender) == expected + last_turn, "the dead Rasa's last turn lands")
            stop_gracefully(consumer)
        assert stream.waiting() == 0
        logs = "".join(path.read_text() for path in tmp_path.glob("*/consumer.log"))
        assert PHONE not in logs
    finally:
        stack.stop()
        kefu.dispose()


def test_an_event_rabbitmq_refuses_is_kept_for_later_and_logged_without_its_text(
    stream: StreamQueues, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    event = user_event("refused", f"my phone is {PHONE}", "inform", 0.9, "en")

    async def publish_to_a_vanished_exchange() -> list[dict]:
        config = EndpointConfig.from_dict(event_broker_endpoint(stream.url, stream.queue))
        broker = await ConfirmedPikaEventBroker.from_endpoint_config(config)
        try:
            await asyncio.to_thread(stream.delete)  # RabbitMQ now refuses what is published to the exchange
            broker.publish(event)
            await broker.confirmed()
            return list(broker._unpublished_events)
        finally:
            await broker.close()

    caplog.set_level(logging.DEBUG)
    assert asyncio.run(publish_to_a_vanished_exchange()) == [event]
    assert "RabbitMQ did not take a 'user' event" in caplog.text
    logs = caplog.text + capsys.readouterr().out
    assert PHONE not in logs
    assert ":guest@" not in logs, "Rasa logs the broker's URL: it must come without the password"
