"""The event broker's batches: a sender's conversation is remembered between batches, but never wrongly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import event, select, update

from router.bootstrap import Kefu
from router.crm.conversations import CONVERSATION_GAP
from router.crm.interactions import ConversationRef, RecentConversations, Turn, record_turns
from router.crm.models import Channel, Conversation, Interaction, Speaker, utcnow

SENDER = "web:batch"


def _turns(prefix: str, customer_text: str = "hello", sender_id: str = SENDER) -> list[Turn]:
    return [
        Turn(f"{prefix}-u", sender_id, Speaker.customer, customer_text, intent="greet"),
        Turn(f"{prefix}-b", sender_id, Speaker.bot, "👋"),  # no script of its own
    ]


def _write(kefu: Kefu, turns: list[Turn], recent: RecentConversations) -> None:
    with kefu.uow() as uow:
        record_turns(uow.session, turns, recent)
        uow.commit()


@contextmanager
def _statements(kefu: Kefu) -> Iterator[list[str]]:
    seen: list[str] = []

    def keep(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(kefu.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(kefu.engine, "before_cursor_execute", keep)


def _logged(kefu: Kefu) -> list[tuple[str, int, str | None]]:
    with kefu.uow() as uow:
        rows = uow.session.execute(select(Interaction).order_by(Interaction.id)).scalars()
        return [(row.event_key, row.conversation_id, row.language) for row in rows]


def test_a_sender_who_keeps_talking_is_logged_without_looking_up_the_conversation(kefu: Kefu) -> None:
    recent = RecentConversations()
    _write(kefu, _turns("1"), recent)
    with _statements(kefu) as statements:
        _write(kefu, _turns("2", "你好"), recent)

    assert not [s for s in statements if s.startswith("SELECT") and ("conversations" in s or "identities" in s)]
    logged = _logged(kefu)
    assert [key for key, _, _ in logged] == ["1-u", "1-b", "2-u", "2-b"]
    assert len({conversation_id for _, conversation_id, _ in logged}) == 1
    # The customer switched to Chinese: the bot's turn and the conversation follow.
    assert [language for _, _, language in logged] == ["en", "en", "zh", "zh"]
    with kefu.uow() as uow:
        conversation = uow.session.get(Conversation, logged[0][1])
        assert conversation.language == "zh"
        assert utcnow() - conversation.last_activity_at < timedelta(seconds=30)


def test_a_rolled_back_batch_leaves_no_conversation_remembered(kefu: Kefu) -> None:
    recent = RecentConversations()
    with kefu.uow() as uow:
        record_turns(uow.session, _turns("lost"), recent)
        # No commit: the database was gone, say; the conversation this batch started does not exist.
    assert recent.get(SENDER, utcnow()) is None
    _write(kefu, _turns("lost"), recent)

    [(_, conversation_id, _), _] = _logged(kefu)
    with kefu.uow() as uow:
        assert uow.session.get(Conversation, conversation_id) is not None
    assert recent.get(SENDER, utcnow()).id == conversation_id


def test_a_remembered_conversation_gone_quiet_is_looked_up_again_and_a_new_one_started(kefu: Kefu) -> None:
    recent = RecentConversations()
    _write(kefu, _turns("old"), recent)
    [(_, old_id, _), _] = _logged(kefu)
    long_ago = utcnow() - CONVERSATION_GAP - timedelta(minutes=1)
    with kefu.uow() as uow:
        uow.session.execute(update(Conversation).where(Conversation.id == old_id).values(last_activity_at=long_ago))
        uow.commit()
    # The writer last touched it over half a gap ago (its clock may differ from another writer's).
    recent.remember({SENDER: replace(recent.get(SENDER, utcnow()), touched_at=utcnow() - CONVERSATION_GAP / 2)})
    _write(kefu, _turns("new"), recent)

    new_ids = {conversation_id for key, conversation_id, _ in _logged(kefu) if key.startswith("new")}
    assert len(new_ids) == 1 and old_id not in new_ids


def test_only_the_most_recent_senders_are_remembered() -> None:
    recent = RecentConversations(size=2)
    now = utcnow()
    for number in range(3):
        recent.remember({f"web:{number}": _ref(number, now)})
    assert [recent.get(f"web:{number}", now) for number in range(3)] == [None, _ref(1, now), _ref(2, now)]


def _ref(number: int, now: datetime) -> ConversationRef:
    return ConversationRef(number, number, Channel.web, "zh", now)
