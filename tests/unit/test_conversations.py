"""Sender ids map to one customer per channel identity and to their current conversation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation, parse_sender_id, sender_id_for
from router.crm.models import Channel, ChannelIdentity, Customer


def test_sender_ids_round_trip_through_channel_and_external_id() -> None:
    for channel, external in [(Channel.web, "3f2a-11"), (Channel.telegram, "123456"), (Channel.rest, "alice")]:
        assert parse_sender_id(sender_id_for(channel, external)) == (channel, external)
    assert parse_sender_id("unknown:thing") == (Channel.rest, "unknown:thing")


def test_same_sender_keeps_one_customer_and_conversation(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        first = current_conversation(uow.session, "telegram:42", language="en")
        again = current_conversation(uow.session, "telegram:42")
        uow.commit()
    assert first.id == again.id
    with kefu.uow() as uow:
        assert uow.session.scalar(select(func.count(Customer.id))) == 1
        identity = uow.session.execute(select(ChannelIdentity)).scalar_one()
        assert (identity.channel, identity.external_id) == (Channel.telegram, "42")


def test_a_quiet_conversation_is_followed_by_a_new_one(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        old = current_conversation(uow.session, "web:abc")
        old.last_activity_at -= timedelta(hours=3)
        uow.commit()
    with kefu.uow() as uow:
        new = current_conversation(uow.session, "web:abc")
        uow.commit()
    assert new.id != old.id
    assert new.customer_id == old.customer_id
