"""Tracker retention: Rasa's raw conversation events are deleted once they are older than the retention period.

The tracker store keeps every event of every conversation (redacted, but still what each customer said, turn by
turn); the CRM's interaction log is the lasting record. The worker prunes the tracker's ``events`` table once an
hour, ``kefu tracker prune`` on demand, on SQLite and PostgreSQL alike. Deleting in small batches keeps each
transaction short, so Rasa saving a turn never waits long behind the pruning.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from router.db import build_engine
from router.settings import Settings

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
PRUNE_INTERVAL_S = 3_600.0
BATCH_ROWS = 5_000

# Rasa's SQLTrackerStore table, as far as pruning needs it (rasa.core.tracker_store.SQLTrackerStore.SQLEvent).
_EVENTS = sa.table("events", sa.column("id", sa.Integer), sa.column("timestamp", sa.Float))


@dataclass(frozen=True)
class PruneResult:
    """What one pruning did, for the command's line and the worker's log."""

    deleted: int
    cutoff: float | None


def delete_events_before(engine: Engine, cutoff: float, batch_rows: int = BATCH_ROWS) -> int:
    """Delete every tracker event stamped before ``cutoff`` (Unix seconds); returns how many went."""
    if not sa.inspect(engine).has_table(_EVENTS.name):
        return 0  # Rasa has not stored a conversation yet
    deleted = 0
    while True:
        oldest = sa.select(_EVENTS.c.id).where(_EVENTS.c.timestamp < cutoff).order_by(_EVENTS.c.id).limit(batch_rows)
        with engine.begin() as connection:
            count = connection.execute(sa.delete(_EVENTS).where(_EVENTS.c.id.in_(oldest.scalar_subquery()))).rowcount
        deleted += count
        if count < batch_rows:
            return deleted


def tracker_exists(database_url: str) -> bool:
    """Whether there is a tracker database to prune (an SQLite file is never created just to be pruned)."""
    url = make_url(database_url)
    return url.get_backend_name() != "sqlite" or bool(url.database and Path(url.database).exists())


def prune_tracker(database_url: str, retention_days: int, now: float | None = None) -> PruneResult:
    """Delete the tracker events older than ``retention_days`` days; 0 days keeps everything."""
    if retention_days <= 0 or not tracker_exists(database_url):
        return PruneResult(deleted=0, cutoff=None)
    cutoff = (time.time() if now is None else now) - retention_days * SECONDS_PER_DAY
    engine = build_engine(database_url)
    try:
        return PruneResult(deleted=delete_events_before(engine, cutoff), cutoff=cutoff)
    finally:
        engine.dispose()


def run_tracker_retention(settings: Settings, *, interval_s: float, stop: threading.Event) -> None:
    """Prune now and then every ``interval_s`` seconds until ``stop``; the worker runs it in a thread of its own."""
    while not stop.is_set():
        try:
            result = prune_tracker(settings.tracker_database_url, settings.tracker_retention_days)
            if result.deleted:
                log.info("tracker retention: deleted %d events", result.deleted)
        except Exception:
            # A locked or unreachable tracker database is tried again at the next interval.
            log.exception("tracker retention failed")
        stop.wait(interval_s)
