"""Rasa's Redis lock made atomic (bot/lock_store.py): Rasa processes taking tickets for one customer at the same
moment each get their own, queued in order, and a waiting turn's ticket is never dropped when another finishes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from rasa.core.lock_store import RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from bot.lock_store import AtomicRedisLockStore
from router.runner import lock_store_endpoint

PROCESSES = 16


@pytest.fixture
def stores(redis_server: str) -> Iterator[list[AtomicRedisLockStore]]:
    """One store per simulated Rasa process, each with its own Redis connection, as ``kefu run`` configures them."""
    config = lock_store_endpoint(redis_server)
    created = [AtomicRedisLockStore(EndpointConfig(**config)) for _ in range(PROCESSES)]
    yield created
    for store in created:
        store.red.close()


def at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run every call in a thread of its own, all released together; their results in order."""
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_tickets_taken_at_once_by_several_processes_are_all_kept_in_order(
    stores: list[AtomicRedisLockStore],
) -> None:
    sender = f"lock-{uuid.uuid4()}"
    tickets = at_once([lambda store=store: store.issue_ticket(sender, 60) for store in stores])
    assert sorted(tickets) == list(range(PROCESSES))  # Rasa numbers tickets from 0
    lock = stores[0].get_lock(sender)
    assert [ticket.number for ticket in lock.tickets] == list(range(PROCESSES))

    # Half of them finish at once: the others still wait, in order, and the first of them is served next.
    finished = sorted(tickets)[: PROCESSES // 2]
    at_once([lambda store=store, n=n: store.cleanup(sender, n) for store, n in zip(stores, finished, strict=False)])
    lock = stores[0].get_lock(sender)
    assert [ticket.number for ticket in lock.tickets] == list(range(PROCESSES // 2, PROCESSES))
    assert lock.now_serving == PROCESSES // 2

    for number in range(PROCESSES // 2, PROCESSES):
        stores[number % PROCESSES].cleanup(sender, number)
    assert stores[0].get_lock(sender) is None  # nobody waits: the lock is gone


def test_rasas_own_redis_lock_store_reads_the_same_lock(stores: list[AtomicRedisLockStore], redis_server: str) -> None:
    config = lock_store_endpoint(redis_server)
    rasas_own = RedisLockStore(
        host=config["url"], port=config["port"], db=config["db"], key_prefix=config["key_prefix"]
    )
    sender = f"lock-{uuid.uuid4()}"
    try:
        first = stores[0].issue_ticket(sender, 60)
        assert rasas_own.get_lock(sender).now_serving == first
        second = rasas_own.issue_ticket(sender, 60)
        stores[1].cleanup(sender, first)
        assert stores[0].get_lock(sender).now_serving == second
    finally:
        rasas_own.red.delete(rasas_own.key_prefix + sender)
        rasas_own.red.close()
