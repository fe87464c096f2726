"""Inbound update claims are leases: a finished turn's redelivery is a duplicate, a dead turn's is processed."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.crm.models import Channel, utcnow
from router.db import build_engine
from router.delivery.updates import CLAIM_LEASE, Claim, claim_update, finish_update, prune_claims, release_update
from router.settings import Settings

TICK = timedelta(seconds=1)


def claim(kefu: Kefu, update_id: str, channel: Channel = Channel.telegram, **when) -> Claim:
    """One delivery of the update, in a transaction of its own as a webhook request makes it."""
    with kefu.uow() as uow:
        outcome = claim_update(uow.session, channel, update_id, **when)
        uow.commit()
    return outcome


def finish(kefu: Kefu, update_id: str) -> None:
    with kefu.uow() as uow:
        finish_update(uow.session, Channel.telegram, update_id)
        uow.commit()


def test_an_update_is_taken_once_and_after_its_turn_every_redelivery_is_a_duplicate(kefu_any_db: Kefu) -> None:
    assert claim(kefu_any_db, "77") is Claim.taken
    assert claim(kefu_any_db, "77") is Claim.in_progress
    assert claim(kefu_any_db, "77", Channel.web) is Claim.taken
    finish(kefu_any_db, "77")
    assert claim(kefu_any_db, "77") is Claim.done
    # Done is for good: a lease long run out does not make a finished turn run again.
    assert claim(kefu_any_db, "77", now=utcnow() + CLAIM_LEASE * 10) is Claim.done


def test_a_turn_that_died_mid_way_is_taken_over_once_its_lease_runs_out(kefu_any_db: Kefu) -> None:
    started = utcnow()
    assert claim(kefu_any_db, "88", now=started) is Claim.taken
    # The process died here: no finish, no release. Telegram redelivers.
    assert claim(kefu_any_db, "88", now=started + CLAIM_LEASE - TICK) is Claim.in_progress
    taken_over_at = started + CLAIM_LEASE
    assert claim(kefu_any_db, "88", now=taken_over_at) is Claim.taken
    # The new holder has a lease of its own.
    assert claim(kefu_any_db, "88", now=taken_over_at + CLAIM_LEASE - TICK) is Claim.in_progress
    finish(kefu_any_db, "88")
    assert claim(kefu_any_db, "88", now=taken_over_at + CLAIM_LEASE * 2) is Claim.done


def test_a_released_update_is_taken_again_at_once_and_old_claims_are_pruned(kefu_any_db: Kefu) -> None:
    assert claim(kefu_any_db, "99") is Claim.taken
    with kefu_any_db.uow() as uow:
        release_update(uow.session, Channel.telegram, "99")
        uow.commit()
    assert claim(kefu_any_db, "99") is Claim.taken
    assert claim(kefu_any_db, "100") is Claim.taken
    with kefu_any_db.uow() as uow:
        assert prune_claims(uow.session, older_than=timedelta(days=1)) == 0
        assert prune_claims(uow.session, older_than=timedelta(seconds=-1)) == 2
        uow.commit()


@pytest.mark.parametrize("earlier_turn", ["none", "died"])
def test_concurrent_deliveries_of_one_update_are_processed_by_exactly_one(kefu_any_db: Kefu, earlier_turn: str) -> None:
    now = utcnow()
    if earlier_turn == "died":
        assert claim(kefu_any_db, "4242", now=now - CLAIM_LEASE) is Claim.taken
    start = threading.Barrier(8)
    outcomes: list[Claim] = []

    def deliver() -> None:
        start.wait()
        outcomes.append(claim(kefu_any_db, "4242", now=now))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == sorted([Claim.taken] + [Claim.in_progress] * 7)


def test_claims_from_before_leases_stay_duplicates_after_the_migration(database_url: str, tmp_path: Path) -> None:
    engine = build_engine(database_url)
    try:
        migrate.upgrade(engine, "0005_interaction_response")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO channel_updates (channel, update_id, received_at) "
                    "VALUES ('telegram', '5150', CURRENT_TIMESTAMP)"
                )
            )
        migrate.upgrade(engine)
        kefu = bootstrap(Settings(database_url=database_url, var_dir=tmp_path))
        try:
            assert claim(kefu, "5150", now=utcnow() + CLAIM_LEASE) is Claim.done
        finally:
            kefu.dispose()
    finally:
        engine.dispose()
