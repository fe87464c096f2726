"""Real Rasa on the engines several Rasa processes share: conversations in PostgreSQL, each conversation's lock in
Redis (Rasa's own RedisLockStore), as ``KEFU_TRACKER_STORE_URL`` and ``KEFU_REDIS_URL`` configure them."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.core.lock_store import RedisLockStore

from router.bootstrap import Kefu
from router.runner import lock_store_endpoint
from tests.support.crm import seeded_sqlite_kefu
from tests.support.databases import fresh_postgres_database
from tests.support.rasa_stack import RasaStack, running_stack, tracker_events

pytestmark = [pytest.mark.rasa, pytest.mark.postgres]

WAIT_S = 60


@pytest.fixture(scope="module")
def tracker_url(postgres_server: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kefu]:
    kefu = seeded_sqlite_kefu(tmp_path_factory.mktemp("engines-crm"))
    yield kefu
    kefu.dispose()


def engines(tracker_url: str, redis_url: str) -> dict[str, str]:
    return {"KEFU_TRACKER_STORE_URL": tracker_url, "KEFU_REDIS_URL": redis_url}


@pytest.fixture(scope="module")
def rasa(
    crm: Kefu, tracker_url: str, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RasaStack]:
    work_dir = tmp_path_factory.mktemp("engines-rasa")
    with running_stack(crm.settings.database_url, work_dir, env=engines(tracker_url, redis_server)) as stack:
        yield stack


def stored_events(tracker_url: str, sender_id: str) -> list[tuple[str, str | None]]:
    """(type, text) of the sender's events in the PostgreSQL tracker store, in the order stored."""
    return [(kind, event.get("text")) for kind, event in tracker_events(tracker_url, sender_id)]


def user_texts(events: list[tuple[str, str | None]]) -> list[str | None]:
    return [text for kind, text in events if kind == "user"]


def test_the_conversation_is_kept_in_postgresql_and_another_rasa_process_carries_it_on(
    rasa: RasaStack, crm: Kefu, tracker_url: str, redis_server: str, tmp_path: Path
) -> None:
    sender = f"web:{uuid.uuid4()}"
    assert rasa.send(sender, "hello")
    events = stored_events(tracker_url, sender)
    assert user_texts(events) == ["hello"]
    assert "bot" in [kind for kind, _ in events]
    assert not (rasa.log_dir / "rasa_tracker.db").exists(), "the laptop's SQLite file must not be used"

    with running_stack(crm.settings.database_url, tmp_path, env=engines(tracker_url, redis_server)) as other:
        assert [e.get("text") for e in other.tracker(sender)["events"] if e["event"] == "user"] == ["hello"]
        assert other.send(sender, "thank you")
    assert rasa.send(sender, "bye")
    assert user_texts(stored_events(tracker_url, sender)) == ["hello", "thank you", "bye"]


def test_a_turn_waits_while_another_rasa_process_holds_the_conversation_lock_in_redis(
    rasa: RasaStack, redis_server: str
) -> None:
    config = lock_store_endpoint(redis_server)
    other_replica = RedisLockStore(
        host=config["url"], port=config["port"], db=config["db"], key_prefix=config["key_prefix"]
    )
    sender = f"web:{uuid.uuid4()}"
    held = other_replica.issue_ticket(sender, lock_lifetime=WAIT_S)
    replies: list[list[dict]] = []
    turn = threading.Thread(target=lambda: replies.append(rasa.send(sender, "hello")))
    try:
        turn.start()
        deadline = time.monotonic() + WAIT_S
        # Rasa's ticket joins the queue under the key the other process holds.
        while len(other_replica.get_lock(sender).tickets) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(other_replica.get_lock(sender).tickets) == 2, "Rasa never queued on the Redis lock"
        turn.join(timeout=3)
        assert turn.is_alive() and not replies, "the turn ran while another process held the conversation"
        other_replica.cleanup(sender, held)
        turn.join(timeout=WAIT_S)
        assert replies and replies[0], "the turn did not run once the lock was released"
    finally:
        other_replica.cleanup(sender, held)
        turn.join(timeout=WAIT_S)
        other_replica.red.delete(other_replica.key_prefix + sender)
        other_replica.red.close()
