"""The dedupe store for inbound updates: a row per (channel, update id) in the CRM, leased while it is processed.

A claim is a lease, not a tombstone: the process that takes an update marks it done when the turn is over. If the
process dies mid-turn the lease runs out, and the sender's redelivery takes the update over and is processed; a
redelivery while the lease is live, or after the turn is done, is not. The database decides every race: the
first claim is an insert that does nothing on conflict, a take-over an update whose condition is the expired lease.
Telegram redelivers an update for at most 24 hours, so claims older than ``KEEP_CLAIMS_FOR`` are pruned.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from router.crm.models import Channel, ChannelUpdate, utcnow
from router.db import insert_on_conflict

KEEP_CLAIMS_FOR = timedelta(days=2)
# Far longer than a turn (seconds, a minute at worst under load), so a slow live turn is not taken over; short
# enough that a customer whose turn died gets an answer on one of Telegram's next redeliveries.
CLAIM_LEASE = timedelta(minutes=2)


class Claim(str, enum.Enum):
    """What a delivery of an update found."""

    taken = "taken"  # new, or its earlier turn died: process it
    in_progress = "in_progress"  # a live turn holds it: not now; a later redelivery finds it done or abandoned
    done = "done"  # processed already: a duplicate


def claim_update(
    session: Session, channel: Channel, update_id: str, now: datetime | None = None, lease: timedelta = CLAIM_LEASE
) -> Claim:
    """Take the update for ``lease`` if it is new or its lease ran out; otherwise say why not."""
    now = now or utcnow()
    inserted = session.execute(
        insert_on_conflict(session)(ChannelUpdate)
        .values(channel=channel, update_id=update_id, received_at=now, lease_expires_at=now + lease)
        .on_conflict_do_nothing(index_elements=[ChannelUpdate.channel, ChannelUpdate.update_id])
    )
    if inserted.rowcount == 1:
        return Claim.taken
    this_update = (ChannelUpdate.channel == channel, ChannelUpdate.update_id == update_id)
    taken_over = session.execute(
        update(ChannelUpdate)
        .where(*this_update, ChannelUpdate.done_at.is_(None), ChannelUpdate.lease_expires_at <= now)
        .values(lease_expires_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    if taken_over.rowcount == 1:
        return Claim.taken
    done_at = session.execute(select(ChannelUpdate.done_at).where(*this_update)).scalar_one_or_none()
    return Claim.in_progress if done_at is None else Claim.done


def finish_update(session: Session, channel: Channel, update_id: str) -> None:
    """The update's turn is over: every later redelivery is a duplicate."""
    session.execute(
        update(ChannelUpdate)
        .where(ChannelUpdate.channel == channel, ChannelUpdate.update_id == update_id)
        .values(done_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def release_update(session: Session, channel: Channel, update_id: str) -> None:
    """Give a claim back after processing failed, so the sender's redelivery is processed at once."""
    session.execute(delete(ChannelUpdate).where(ChannelUpdate.channel == channel, ChannelUpdate.update_id == update_id))


def prune_claims(session: Session, older_than: timedelta = KEEP_CLAIMS_FOR) -> int:
    """Forget claims no sender can redeliver any more; returns how many were removed."""
    result = session.execute(delete(ChannelUpdate).where(ChannelUpdate.received_at < utcnow() - older_than))
    return result.rowcount or 0
