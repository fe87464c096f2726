"""Turn catch-up: what Rasa stored in its tracker but the CRM event broker never wrote (Rasa killed with -9 while
turns waited in the broker's batch) is logged from the tracker store, under the same ``event_key``, so a turn both
wrote is stored once.

The tracker's events are read in id order after a cursor kept in the CRM (``tracker_cursors``), and only once they
are ``settle_s`` old: by then the broker, if alive, has written them, and Rasa has committed every turn that
started before (a turn saves its events in one transaction at its end, within its lock's lifetime). The turns and
the new cursor are committed together, and the cursor moves only from where this pass read it, so several workers
may run it: one advances, the others find the cursor moved and read on from there. A tracker is caught up from
the first time a worker sees it; nothing from before is logged again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from router.bootstrap import Kefu
from router.crm.interactions import Turn
from router.crm.models import TrackerCursor
from router.crm.rasa_turns import TurnTranslator
from router.db import READ_ONLY, build_engine, insert_on_conflict
from router.retention import tracker_exists
from router.routing.policy import routing_policy
from router.turn_log import log_turns

log = logging.getLogger(__name__)

# Rasa's SQLTrackerStore table, as far as the catch-up reads it.
_EVENTS = sa.table(
    "events",
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("data", sa.Text),
)
CATCH_UP_INTERVAL_S = 30.0
BATCH_ROWS = 1_000


@dataclass
class TurnCatchUp:
    """Logs the tracker's settled turns the CRM does not have, from the cursor stored in the CRM."""

    tracker: Engine
    kefu: Kefu
    settle_s: float
    _translator: TurnTranslator = field(default_factory=TurnTranslator)

    @property
    def name(self) -> str:
        """The cursor's key: the tracker database, never its password."""
        return self.tracker.url.render_as_string(hide_password=True)[:200]

    def run(self, now: float | None = None) -> int:
        """Log every settled turn after the cursor; returns how many the CRM did not have."""
        now = time.time() if now is None else now
        if not sa.inspect(self.tracker).has_table(_EVENTS.name):
            return 0  # Rasa has not stored a conversation yet
        stored = 0
        position = self._position()
        while batch := self._settled_after(position, now - self.settle_s):
            moved, logged = self._log(batch, position)
            stored += logged
            position = batch[-1].id if moved else self._position()
        return stored

    def _position(self) -> int:
        with self.kefu.uow() as uow:
            position = uow.session.get(TrackerCursor, self.name)
            if position is not None:
                return position.position
        with self.tracker.connect() as connection:
            newest = connection.execute(sa.select(sa.func.max(_EVENTS.c.id))).scalar() or 0
        with self.kefu.uow() as uow:
            uow.session.execute(
                insert_on_conflict(uow.session)(TrackerCursor)
                .values(tracker=self.name, position=newest)
                .on_conflict_do_nothing(index_elements=[TrackerCursor.tracker])
            )
            uow.commit()
            return uow.session.get(TrackerCursor, self.name, populate_existing=True).position

    def _settled_after(self, position: int, settled_before: float) -> list[Row]:
        """The next events after ``position``, up to (not past) the first one too recent to be settled."""
        with self.tracker.connect() as connection:
            rows = connection.execute(
                sa.select(_EVENTS.c.id, _EVENTS.c.sender_id, _EVENTS.c.type_name, _EVENTS.c.timestamp, _EVENTS.c.data)
                .where(_EVENTS.c.id > position)
                .order_by(_EVENTS.c.id)
                .limit(BATCH_ROWS)
            ).all()
        settled = []
        for row in rows:
            if row.timestamp is None or row.timestamp >= settled_before:
                break
            settled.append(row)
        return settled

    def _turns(self, rows: list[Row]) -> list[Turn]:
        turns = []
        for row in rows:
            if row.type_name not in ("user", "bot"):
                continue
            try:
                turn = self._translator.translate({**json.loads(row.data), "sender_id": row.sender_id})
            except Exception:
                log.exception("tracker event %s cannot be read; not logged", row.id)
                continue
            if turn is not None:
                turns.append(turn)
        return turns

    def _log(self, rows: list[Row], position: int) -> tuple[bool, int]:
        """Store the rows' turns and move the cursor past them, if it is still at ``position``."""
        turns = self._turns(rows)
        try:
            return self._store(turns, position, rows[-1].id)
        except IntegrityError:
            # The broker or another worker stored some of them meanwhile: once more, without those.
            return self._store(turns, position, rows[-1].id)

    def _store(self, turns: list[Turn], position: int, last_id: int) -> tuple[bool, int]:
        policy = routing_policy(self.kefu.settings.data_dir)
        with self.kefu.uow() as uow:
            if not _move_cursor(uow.session, self.name, position, last_id):
                return False, 0  # another worker logged these
            interactions = log_turns(uow.session, turns, policy)
            uow.commit()
        return True, len(interactions)


def _move_cursor(session: Session, tracker: str, expected: int, to: int) -> bool:
    """Move the cursor to ``to`` if it is at ``expected``; the row stays locked until this transaction ends."""
    moved = session.execute(
        sa.update(TrackerCursor)
        .where(TrackerCursor.tracker == tracker, TrackerCursor.position == expected)
        .values(position=to)
        .execution_options(synchronize_session=False)
    )
    return moved.rowcount == 1


def run_turn_catch_up(kefu: Kefu, *, interval_s: float, stop: threading.Event) -> None:
    """Catch up every ``interval_s`` seconds until ``stop``; the worker runs it in a thread of its own."""
    tracker_url = kefu.settings.tracker_database_url
    catch_up: TurnCatchUp | None = None
    while not stop.is_set():
        try:
            if catch_up is None and tracker_exists(tracker_url):
                # Read-only, so on SQLite the reads never take the write lock Rasa saves turns under.
                tracker = build_engine(tracker_url).execution_options(**{READ_ONLY: True})
                catch_up = TurnCatchUp(tracker, kefu, kefu.settings.turn_catch_up_settle_s)
            if catch_up is not None and (stored := catch_up.run()):
                log.warning("turn catch-up: %d turns were missing from the CRM and are logged now", stored)
        except Exception:
            # A tracker or CRM that is away is tried again at the next interval, from the stored cursor.
            log.exception("turn catch-up failed")
        stop.wait(interval_s)
