"""Turns Rasa stored but the CRM event broker never wrote are logged from the tracker store, each exactly once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import BotUttered, Event, UserUttered
from sqlalchemy.engine import Engine

from bot.event_broker import CrmEventBroker
from router.bootstrap import Kefu, bootstrap
from router.crm.models import ChannelIdentity, Interaction, Speaker
from router.db import READ_ONLY, build_engine
from router.turn_catch_up import TurnCatchUp
from tests.support.crm import make_kefu, seeded_sqlite_kefu
from tests.support.rasa_stack import start_stack

FLUSH_TIMEOUT_S = 60
PHONE = "13812345678"


def logged(kefu: Kefu, sender_id: str) -> list[tuple[Speaker, str]]:
    """(speaker, text) of the sender's logged turns in the order said."""
    with kefu.uow() as uow:
        rows = uow.session.execute(
            sa.select(Interaction.speaker, Interaction.text)
            .join(ChannelIdentity, ChannelIdentity.customer_id == Interaction.customer_id)
            .where(ChannelIdentity.sender_id == sender_id)
            .order_by(Interaction.created_at, Interaction.id)
        ).all()
    return [(speaker, text) for speaker, text in rows]


def store(tracker: Engine, sender_id: str, event: Event) -> None:
    """Save an event in Rasa's own ``events`` table as Rasa's SQL tracker store does."""
    row = {"sender_id": sender_id, "type_name": event.type_name, "timestamp": event.timestamp}
    row["data"] = json.dumps(event.as_dict())
    with tracker.begin() as connection:
        connection.execute(sa.insert(SQLTrackerStore.SQLEvent.__table__), [row])


def reading(tracker_url: str) -> Engine:
    """The tracker database as the worker reads it."""
    return build_engine(tracker_url).execution_options(**{READ_ONLY: True})


def test_only_settled_tracker_events_are_logged_and_the_cursor_never_skips_one(
    database_url: str, tmp_path: Path
) -> None:
    kefu = make_kefu(database_url, tmp_path)
    tracker_url = f"sqlite:///{tmp_path / 'tracker.db'}"
    tracker = build_engine(tracker_url)
    SQLTrackerStore.Base.metadata.create_all(tracker)  # Rasa's own events table
    said_at = time.time() - 1_000
    settle_s = kefu.settings.turn_catch_up_settle_s
    catch_up = TurnCatchUp(reading(tracker_url), kefu, settle_s)
    assert catch_up.run() == 0  # the first pass on a tracker starts the cursor at its newest event: none yet

    greet = {"name": "greet", "confidence": 0.9}
    store(tracker, "web:settle", UserUttered("first", greet, timestamp=said_at, message_id="m1"))
    store(tracker, "web:settle", BotUttered("hi!", timestamp=said_at + 0.5))
    store(tracker, "web:settle", UserUttered("second", greet, timestamp=said_at + 200, message_id="m2"))
    try:
        assert catch_up.run(now=said_at + settle_s - 1) == 0
        assert catch_up.run(now=said_at + settle_s + 1) == 2
        assert [text for _, text in logged(kefu, "web:settle")] == ["first", "hi!"]
        assert catch_up.run(now=said_at + 200 + settle_s + 1) == 1
        assert catch_up.run(now=said_at + 10_000) == 0
        # Another worker, or this one restarted, goes on from the cursor stored in the CRM.
        assert TurnCatchUp(reading(tracker_url), kefu, settle_s).run(now=said_at + 10_000) == 0
        assert [text for _, text in logged(kefu, "web:settle")] == ["first", "hi!", "second"]
    finally:
        catch_up.tracker.dispose()
        tracker.dispose()
        kefu.dispose()


def test_two_workers_catching_up_at_once_log_each_turn_once(database_url: str, tmp_path: Path) -> None:
    kefu = make_kefu(database_url, tmp_path)
    tracker_url = f"sqlite:///{tmp_path / 'tracker.db'}"
    tracker = build_engine(tracker_url)
    SQLTrackerStore.Base.metadata.create_all(tracker)
    workers = [TurnCatchUp(reading(tracker_url), kefu, settle_s=0) for _ in range(2)]
    assert workers[0].run() == 0
    said_at = time.time() - 1_000
    for n in range(300):
        said = UserUttered(f"message {n}", {"name": "greet"}, timestamp=said_at + n, message_id=f"m{n}")
        store(tracker, f"web:w{n % 7}", said)
    start, stored = threading.Barrier(2), []

    def work(worker: TurnCatchUp) -> None:
        start.wait()
        stored.append(worker.run())

    threads = [threading.Thread(target=work, args=(worker,)) for worker in workers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sum(stored) == 300
        with kefu.uow() as uow:
            assert uow.session.execute(sa.select(sa.func.count(Interaction.id))).scalar_one() == 300
    finally:
        for worker in workers:
            worker.tracker.dispose()
        tracker.dispose()
        kefu.dispose()


@pytest.mark.rasa
def test_turns_a_rasa_killed_with_minus_9_held_in_its_batch_are_logged_once_from_the_tracker(tmp_path: Path) -> None:
    kefu = seeded_sqlite_kefu(tmp_path / "crm")
    rasa_dir = tmp_path / "rasa"
    # The broker holds every turn in memory for an hour: the kill takes all of them.
    stack = start_stack(kefu.settings.database_url, rasa_dir, event_broker={"flush_interval_s": 3600})
    tracker_url = f"sqlite:///{rasa_dir / 'rasa_tracker.db'}"
    catch_up = TurnCatchUp(reading(tracker_url), kefu, settle_s=0)
    sender = f"web:{uuid.uuid4()}"
    said = ["hello", f"my phone is {PHONE}, where is order 12345?", "thank you"]
    try:
        assert catch_up.run() == 0  # the worker was already running: the cursor starts before these turns
        replies = [stack.send(sender, text) for text in said]
        assert all(replies)
        rasa = stack.processes[1]
        os.killpg(rasa.pid, signal.SIGKILL)
        rasa.wait(timeout=30)
    finally:
        stack.stop()
    assert logged(kefu, sender) == [], "the broker should have lost its batch with the process"

    broker = CrmEventBroker(bootstrap(kefu.settings), flush_interval_s=0.05)
    try:
        stored = catch_up.run()
        turns = logged(kefu, sender)
        assert stored == len(turns)
        customer = [text for speaker, text in turns if speaker is Speaker.customer]
        assert customer == ["hello", "my phone is [phone], where is order 12345?", "thank you"]
        bot_replies = sum(len(reply) for reply in replies)
        assert len([s for s, _ in turns if s is Speaker.bot]) == bot_replies
        assert all(PHONE not in text for _, text in turns)

        assert catch_up.run() == 0
        assert TurnCatchUp(reading(tracker_url), kefu, settle_s=0).run() == 0
        # Had the broker lived, its late batch (raw texts) would have found each turn already stored.
        with catch_up.tracker.connect() as connection:
            events = [
                json.loads(data) for (data,) in connection.execute(sa.text("SELECT data FROM events ORDER BY id"))
            ]
        for event in events:
            if event.get("event") == "user" and "phone" in (event.get("text") or ""):
                event["text"] = said[1]
            broker.publish({**event, "sender_id": sender})
        assert broker.writer.flush(FLUSH_TIMEOUT_S)
        assert logged(kefu, sender) == turns
    finally:
        broker.writer.close(timeout_s=FLUSH_TIMEOUT_S)
        broker._kefu.dispose()
        catch_up.tracker.dispose()
        kefu.dispose()
