"""kefu's tracker store: Rasa's SQLTrackerStore (same ``events`` table, same rows) at a fraction of the cost per turn.

Rasa's store reads the whole conversation twice on every turn when an event broker is configured (once to answer,
once more in ``save`` only to find which events are new) plus a third time as a count, opens a new SQLite
connection for each of them, and turns every stored event back into an object by scanning all Event subclasses.
This store reads the conversation once, finds the new events with one count, keeps its connection, and looks event
classes up once per type. On SQLite it uses write-ahead logging with ``synchronous=NORMAL``: a commit no longer
waits for the disk while Rasa's event loop stands still, and a committed turn still survives a crash or restart of
Rasa (only a power cut can lose the last moments). Conversations written by Rasa's own SQLTrackerStore are read as
they are, so switching either way loses nothing.

What reaches the table is redacted: the customer's and the bot's texts, entity and slot values and every other free
text in an event lose their phone, email, ID, passport and card numbers and addresses. The tracker a turn works on
keeps the raw text in memory, so the actions of the turn (and of the next, while it stays cached) still see it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import sqlalchemy as sa
from rasa.core.agent import Agent
from rasa.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import SingletonThreadPool

from bot.pika_broker import ConfirmedPikaEventBroker
from router.crm.redaction import KnownPii, PiiKind, known_pii, redact_entities, redact_json
from router.recent import RecentlyUsed

# Event fields that name things (event types, actions, intents, slots, entity kinds) or identify a message, a
# channel or a model: never personal data, and Rasa needs them intact to read the conversation back.
_IDENTIFIER_KEYS = frozenset(
    {"event", "name", "timestamp", "message_id", "input_channel", "policy", "entity", "extractor", "role", "group"}
    | {"model_id", "assistant_id", "sender_id"}
)


@cache
def event_class(type_name: str) -> type[Event] | None:
    """The Event subclass stored under ``type_name`` (Rasa scans every subclass for each event it reads)."""
    return Event.resolve_by_type(type_name)


def event_from_dict(parameters: dict[str, Any]) -> Event | None:
    """What ``Event.from_parameters`` returns for a stored event, with the class looked up once per type."""
    type_name = parameters.get("event")
    if type_name is None:
        return None
    cls = event_class(type_name)
    return cls._from_parameters(parameters) if cls else None


def redacted_event(data: dict[str, Any], known: KnownPii | None = None) -> dict[str, Any]:
    """An event's ``as_dict()`` as it may be stored: every free text in it redacted, names and ids kept.

    ``known`` is what the customer gave away earlier in the conversation: a bot text or a slot that repeats it is
    redacted too, though it does not look like personal data on its own.
    """
    parse_data = data.get("parse_data")
    if isinstance(parse_data, dict) and isinstance(parse_data.get("entities"), list):
        # As in the interaction log, an entity that is personal data as a whole (a phone) keeps only its kind.
        data = {**data, "parse_data": {**parse_data, "entities": redact_entities(parse_data["entities"], known)}}
    return redact_json(data, keep=_IDENTIFIER_KEYS, known=known)


def personal_data_said(events: Iterable[Event], known: KnownPii) -> dict[str, PiiKind]:
    """``known`` with the personal data of the customer's messages among ``events`` added."""
    said = dict(known)
    for event in events:
        if isinstance(event, UserUttered) and event.text:
            said.update(known_pii(event.text))
    return said


def install() -> None:
    """Let a turn fail when its conversation cannot be read or saved, instead of going on without it.

    Rasa wraps every tracker store in a ``FailSafeTrackerStore``: a conversation it cannot read (the database is
    away) starts afresh, and one it cannot save is kept in that process's memory, and either way the turn is
    answered as if all were well: the customer's message is acknowledged but never stored. Unwrapped, the error
    reaches the channel, which answers 500; the web chat shows it and Telegram sends the update again.
    """
    Agent._create_tracker_store = staticmethod(_tracker_store_without_fallback)


def _tracker_store_without_fallback(store: TrackerStore | None, domain: Domain) -> TrackerStore:
    if store is None:
        return InMemoryTrackerStore(domain)
    store.domain = domain
    return store


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@dataclass
class _Known:
    """A tracker whose first ``stored`` events are exactly the sender's rows up to ``last_id``.

    ``personal`` is the personal data its customer has written so far, which its later events are redacted of.
    """

    tracker: DialogueStateTracker
    stored: int
    last_id: int
    domain: Domain | None
    personal: KnownPii = field(default_factory=dict)


class KefuTrackerStore(SQLTrackerStore):
    """``tracker_store: {type: bot.tracker_store.KefuTrackerStore, dialect: sqlite, db: ...}`` in endpoints.yml.

    The last saved tracker of up to ``cached_conversations`` senders stays in memory, so a turn reads one max-id
    instead of the conversation; the id tells whether anyone else wrote to it since. A tracker is taken out of the
    cache while a turn holds it (Rasa's lock store lets one turn per sender run at a time), and goes back only once
    saved, so a turn that fails half-way leaves nothing half-done to the next one.
    """

    engine: sa.engine.Engine

    def __init__(self, *args: Any, cached_conversations: int = 500, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 opens and closes a SQLite file for every session; keep one connection per thread.
            self.engine.dispose()
            self.engine = sa.create_engine(self.engine.url, poolclass=SingletonThreadPool)
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.sessionmaker = sessionmaker(bind=self.engine)
        self._saved: RecentlyUsed[_Known] = RecentlyUsed(int(cached_conversations))
        self._lent: RecentlyUsed[_Known] = RecentlyUsed(int(cached_conversations))

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            if not fetch_events_from_all_sessions and (known := self._saved.pop(sender_id, None)) is not None:
                last_id = session.query(sa.func.max(self.SQLEvent.id)).filter_by(sender_id=sender_id).scalar()
                # Events added since it was saved mean the turn that added them failed before saving.
                unchanged = len(known.tracker.events) == known.stored and known.domain is self.domain
                if unchanged and last_id == known.last_id:
                    self._lent.keep(sender_id, known)
                    return known.tracker
            query = self._event_query(session, sender_id, fetch_events_from_all_sessions=fetch_events_from_all_sessions)
            rows = query.with_entities(self.SQLEvent.id, self.SQLEvent.data).all()
        if not (self.domain and rows):
            return None
        stored = (event_from_dict(json.loads(data)) for _, data in rows)
        tracker = DialogueStateTracker.from_events(sender_id, [e for e in stored if e is not None], self.domain.slots)
        if not fetch_events_from_all_sessions:
            self._lent.keep(sender_id, _Known(tracker, len(tracker.events), rows[-1][0], self.domain))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store (and publish to the event broker) the events added since the conversation was last saved."""
        sender_id = tracker.sender_id
        known = self._lent.pop(sender_id, None) or self._saved.pop(sender_id, None)
        with self.session_scope() as session:
            if known is not None and known.tracker is tracker:
                stored, last_id = known.stored, known.last_id
                personal = personal_data_said(itertools.islice(tracker.events, stored, None), known.personal)
            else:
                query = self._event_query(session, sender_id, fetch_events_from_all_sessions=False)
                stored, last_id = query.count(), None
                # A tracker this store did not hand out may hold raw messages from before its new events.
                personal = personal_data_said(tracker.events, {})
            new_events = list(itertools.islice(tracker.events, stored, len(tracker.events)))
            rows = [self._row(sender_id, event, personal) for event in new_events]
            if rows:
                # One executemany instead of the ORM's insert per row; Rasa's lock lets one turn per sender save at
                # a time, so the sender's highest id is this turn's last event.
                session.execute(sa.insert(self.SQLEvent), rows)
                last_id = session.query(sa.func.max(self.SQLEvent.id)).filter_by(sender_id=sender_id).scalar()
            session.commit()
        # Published once stored: the event broker never logs a turn the tracker store lacks, and one stored but not
        # published (Rasa killed in between) is logged by the worker's turn catch-up from the tracker store.
        if self.event_broker is not None:
            await self._stream_new_events(self.event_broker, new_events, sender_id)
            if isinstance(self.event_broker, ConfirmedPikaEventBroker):
                # Rasa answers the turn only once RabbitMQ holds its events.
                await self.event_broker.confirmed()
        # A new session makes the stored conversation start at it; the next turn reads it from the table.
        if last_id is not None and not any(isinstance(event, SessionStarted) for event in new_events):
            self._saved.keep(sender_id, _Known(tracker, len(tracker.events), last_id, self.domain, personal))

    @staticmethod
    def _row(sender_id: str, event: Event, personal: KnownPii) -> dict[str, Any]:
        """The ``events`` row Rasa's SQLTrackerStore writes for an event, redacted."""
        data = redacted_event(event.as_dict(), personal)
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }
