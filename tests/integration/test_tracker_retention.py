"""Tracker retention: events older than the retention period leave Rasa's tracker store, on SQLite and PostgreSQL,
by the worker's hourly job or by `kefu tracker prune`; newer events and conversations are untouched."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.engine import make_url

from bot.tracker_store import KefuTrackerStore
from router.db import build_engine
from router.retention import SECONDS_PER_DAY, delete_events_before, prune_tracker
from router.worker import run_worker
from tests.support.cli import invoke_kefu, run_kefu
from tests.support.crm import make_kefu

DOMAIN = Domain.from_dict({"intents": ["greet"]})
NOW = time.time()
OLD, RECENT = NOW - 40 * SECONDS_PER_DAY, NOW - 2 * SECONDS_PER_DAY


def _turn(text: str, timestamp: float) -> list[Event]:
    return [
        UserUttered(text, {"name": "greet", "confidence": 0.9}, timestamp=timestamp),
        BotUttered("你好", timestamp=timestamp + 1),
        ActionExecuted("action_listen", timestamp=timestamp + 2),
    ]


def _store(database_url: str) -> KefuTrackerStore:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return KefuTrackerStore(domain=DOMAIN, dialect="sqlite", db=url.database)
    return KefuTrackerStore(
        domain=DOMAIN, dialect="postgresql", host=url.host, port=url.port, db=url.database, username=url.username
    )


def _conversations(database_url: str) -> None:
    """One conversation wholly older than 30 days, one that began before and goes on, one wholly recent."""
    store = _store(database_url)
    for sender, events in {
        "web:old": _turn("很久以前", OLD),
        "web:ongoing": _turn("上个月", OLD) + _turn("又来了", RECENT),
        "web:recent": _turn("前天", RECENT),
    }.items():
        asyncio.run(store.save(DialogueStateTracker.from_events(sender, events, DOMAIN.slots)))
    store.engine.dispose()


def _stored(database_url: str) -> list[tuple[str, float]]:
    engine = build_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text("SELECT sender_id, timestamp FROM events ORDER BY id")))
    finally:
        engine.dispose()


def test_events_older_than_the_retention_period_are_deleted_and_the_rest_kept(database_url: str) -> None:
    _conversations(database_url)
    assert prune_tracker(database_url, retention_days=0).deleted == 0, "0 days keeps everything"
    assert len(_stored(database_url)) == 12

    result = prune_tracker(database_url, retention_days=30, now=NOW)

    assert result.deleted == 6
    assert [sender for sender, _ in _stored(database_url)] == ["web:ongoing"] * 3 + ["web:recent"] * 3
    assert all(timestamp >= NOW - 30 * SECONDS_PER_DAY for _, timestamp in _stored(database_url))
    store = _store(database_url)
    assert asyncio.run(store.retrieve("web:old")) is None
    assert asyncio.run(store.retrieve("web:ongoing")).latest_message.text == "又来了"
    assert asyncio.run(store.retrieve("web:recent")).latest_message.text == "前天"
    store.engine.dispose()


def test_deleting_in_batches_deletes_every_old_event(sqlite_url: str) -> None:
    _conversations(sqlite_url)
    engine = build_engine(sqlite_url)
    assert delete_events_before(engine, NOW - 30 * SECONDS_PER_DAY, batch_rows=2) == 6
    engine.dispose()
    assert len(_stored(sqlite_url)) == 6


def test_no_tracker_store_yet_is_nothing_to_prune_and_no_file_is_created(tmp_path: Path) -> None:
    missing = tmp_path / "var" / "rasa_tracker.db"
    assert prune_tracker(f"sqlite:///{missing}", retention_days=30).deleted == 0
    assert not missing.exists()


def test_kefu_tracker_prune_uses_the_retention_setting(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    tracker_url = f"sqlite:///{var_dir / 'rasa_tracker.db'}"
    var_dir.mkdir()
    _conversations(tracker_url)
    env = {"KEFU_VAR_DIR": str(var_dir), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}"}

    kept = invoke_kefu("tracker", "prune", env={**env, "KEFU_TRACKER_RETENTION_DAYS": "0"})
    assert kept.returncode == 0, kept.stderr
    assert "nothing to prune" in kept.stdout and len(_stored(tracker_url)) == 12
    pruned = run_kefu("tracker", "prune", env={**env, "KEFU_TRACKER_RETENTION_DAYS": "30"})
    assert pruned.returncode == 0, pruned.stderr
    assert "6 tracker events older than 30 days deleted" in pruned.stdout
    assert len(_stored(tracker_url)) == 6


def test_the_worker_prunes_the_tracker_store(sqlite_url: str, tmp_path: Path) -> None:
    kefu = make_kefu(sqlite_url, tmp_path, tracker_retention_days=30)
    kefu.settings.var_dir.mkdir(parents=True, exist_ok=True)
    _conversations(kefu.settings.tracker_database_url)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(kefu,), kwargs={"interval_s": 0.2, "stop": stop})
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while len(_stored(kefu.settings.tracker_database_url)) > 6 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert [sender for sender, _ in _stored(kefu.settings.tracker_database_url)] == ["web:ongoing"] * 3 + [
        "web:recent"
    ] * 3
    kefu.dispose()
