"""Rasa's turns into the CRM: the one write path of the event broker, the RabbitMQ turn stream and the catch-up.

Each of them translates Rasa events with :class:`~router.crm.rasa_turns.TurnTranslator` and stores a batch with
:func:`log_turns`, in one transaction, idempotent by ``event_key``: a batch written twice (a retry after a commit
whose answer was lost, a message RabbitMQ delivers again) is stored once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from router.bootstrap import Kefu
from router.crm.interactions import RecentConversations, Turn, record_turns
from router.crm.models import Interaction
from router.routing.policy import RoutingPolicy, routing_policy
from router.routing.returning import reopen_on_customer_turns

Item = TypeVar("Item")


def log_turns(
    session: Session, turns: Sequence[Turn], policy: RoutingPolicy, recent: RecentConversations | None = None
) -> list[Interaction]:
    """Store the turns the CRM does not have yet and reopen the tickets of customers who wrote again."""
    interactions = record_turns(session, turns, recent)
    reopen_on_customer_turns(session, interactions, policy)
    return interactions


class TurnLog:
    """Writes batches of turns, one transaction each, remembering the senders' conversations between batches."""

    def __init__(self, kefu: Kefu) -> None:
        self._kefu = kefu
        self._conversations = RecentConversations()

    def write(self, turns: Sequence[Turn]) -> None:
        """Store a batch; raises what the database raised, and then nothing of the batch is stored."""
        policy = routing_policy(self._kefu.settings.data_dir)
        with self._kefu.uow() as uow:
            log_turns(uow.session, turns, policy, self._conversations)
            uow.commit()


def is_transient(error: Exception) -> bool:
    """Whether a failed write may succeed later (database down, locked, connection cut) and so is retried."""
    return isinstance(error, OperationalError | InterfaceError) or bool(getattr(error, "connection_invalidated", False))


def write_or_isolate(write: Callable[[Sequence[Item]], None], batch: Sequence[Item]) -> list[tuple[Item, Exception]]:
    """Write ``batch`` at once or, when that fails for a reason a retry would not fix, item by item.

    Returns the items that cannot be stored, each with its error: one unstorable turn must not hold back every turn
    after it. A transient error (:func:`is_transient`) is raised for the caller to retry the whole batch, which
    stores the items written meanwhile only once.
    """
    try:
        write(batch)
        return []
    except Exception as error:
        if is_transient(error):
            raise
    unstorable = []
    for item in batch:
        try:
            write([item])
        except Exception as error:
            if is_transient(error):
                raise
            unstorable.append((item, error))
    return unstorable
