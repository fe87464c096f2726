"""The dedupe store for inbound updates: a row per (channel, update id) in the CRM, claimed before processing.

A unique constraint makes the claim atomic across Rasa processes and restarts; Telegram redelivers an update for
at most 24 hours, so claims older than ``KEEP_CLAIMS_FOR`` are pruned.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from router.crm.models import Channel, ChannelUpdate, utcnow

KEEP_CLAIMS_FOR = timedelta(days=2)


def claim_update(session: Session, channel: Channel, update_id: str) -> bool:
    """True when this update is new and is now ours to process; False when it was seen before."""
    try:
        with session.begin_nested():
            session.add(ChannelUpdate(channel=channel, update_id=update_id))
    except IntegrityError:
        return False
    return True


def release_update(session: Session, channel: Channel, update_id: str) -> None:
    """Give a claim back after processing failed, so the sender's redelivery is processed."""
    session.execute(delete(ChannelUpdate).where(ChannelUpdate.channel == channel, ChannelUpdate.update_id == update_id))


def prune_claims(session: Session, older_than: timedelta = KEEP_CLAIMS_FOR) -> int:
    """Forget claims no sender can redeliver any more; returns how many were removed."""
    result = session.execute(delete(ChannelUpdate).where(ChannelUpdate.received_at < utcnow() - older_than))
    return result.rowcount or 0
