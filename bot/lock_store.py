"""Rasa's RedisLockStore with every change to a conversation's lock made atomic, so several Rasa processes share it.

Rasa 3.6's RedisLockStore keeps each conversation's ticket lock as one JSON value and changes it by reading it,
changing it in Python and writing it back. Two Rasa processes taking tickets for one customer at the same moment
overwrite each other's ticket: both turns then run at once on the same tracker, or a waiting turn finds the lock
deleted under it and fails with ``LockError`` (which Rasa's REST channel answers with an empty 200), and the
customer's message is lost. Rasa's fix (``ConcurrentRedisLockStore``) is in Rasa Pro only. This store makes each
read-change-write one Redis transaction (``WATCH``/``MULTI``/``EXEC``, retried when another process changed the lock
in between); the stored value, the key and the waiting are Rasa's, so replicas with either store may share a lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig
from redis.client import Pipeline


class AtomicRedisLockStore(RedisLockStore):
    """``lock_store: {type: bot.lock_store.AtomicRedisLockStore, url: …, port: …, db: …}`` in endpoints.yml."""

    def __init__(self, endpoint_config: EndpointConfig) -> None:
        # Rasa builds a custom lock store from its endpoint alone; these are RedisLockStore's own arguments.
        super().__init__(host=endpoint_config.url, **endpoint_config.kwargs)

    def _change(self, conversation_id: str, change: Callable[[TicketLock], int | None]) -> int | None:
        """Apply ``change`` to the conversation's lock (a new one if none is stored) in one transaction; the lock is
        deleted when no ticket is left in it. Returns what ``change`` returned."""
        key = self.key_prefix + conversation_id

        def attempt(pipe: Pipeline) -> int | None:
            stored = cast("bytes | None", pipe.get(key))  # while watching, the pipeline answers at once
            lock = TicketLock.from_dict(json.loads(stored)) if stored else TicketLock(conversation_id)
            outcome = change(lock)
            pipe.multi()
            if lock.is_someone_waiting():
                pipe.set(key, lock.dumps())
            else:
                pipe.delete(key)
            return outcome

        return self.red.transaction(attempt, key, value_from_callable=True)

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """A ticket for the conversation's lock, after every ticket already issued."""
        try:
            ticket = self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime))
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        assert ticket is not None
        return ticket

    def update_lock(self, conversation_id: str) -> None:
        """Drop the expired tickets (a turn whose Rasa died holds its ticket until it expires)."""
        self._change(conversation_id, lambda lock: lock.remove_expired_tickets())

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Give the ticket back; the lock goes once nobody waits for it."""
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """As :meth:`finish_serving`: a lock nobody waits for is deleted in the same transaction, never under a
        ticket another process has just taken."""
        self.finish_serving(conversation_id, ticket_number)
