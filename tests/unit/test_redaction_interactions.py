"""The interaction log stores turns redacted, once per event key, against the right conversation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.interactions import MAX_STORED_CHARS, Turn, conversation_turns, guess_language, record_turns
from router.crm.models import Channel, Interaction, Speaker, utcnow


def _customer_turn(key: str, text: str, sender_id: str = "web:abc", **extra) -> Turn:
    return Turn(event_key=key, sender_id=sender_id, speaker=Speaker.customer, text=text, **extra)


def test_a_customer_turn_is_stored_redacted_with_what_the_nlu_understood(kefu: Kefu) -> None:
    turn = _customer_turn(
        "k1",
        "我的电话13812345678，订单12345没到",
        intent="check_status",
        confidence=0.93,
        entities=[{"entity": "phone", "value": "13812345678"}, {"entity": "order_number", "value": "12345"}],
    )
    with kefu.uow() as uow:
        record_turns(uow.session, [turn])
        uow.commit()
    with kefu.uow() as uow:
        stored = uow.session.execute(select(Interaction)).scalar_one()
        assert stored.text == "我的电话[phone]，订单12345没到"
        assert stored.entities == [
            {"entity": "phone", "value": "[phone]"},
            {"entity": "order_number", "value": "12345"},
        ]
        assert (stored.intent, stored.confidence, stored.language) == ("check_status", 0.93, "zh")
        assert stored.channel is Channel.web
        assert stored.speaker is Speaker.customer


def test_recording_the_same_batch_twice_stores_each_turn_once(kefu: Kefu) -> None:
    turns = [_customer_turn("k1", "hello"), Turn("k2", "web:abc", Speaker.bot, "Hi! How can I help?", latency_ms=42.0)]
    for _ in range(2):
        with kefu.uow() as uow:
            record_turns(uow.session, turns + turns)
            uow.commit()
    with kefu.uow() as uow:
        assert uow.session.execute(select(func.count(Interaction.id))).scalar_one() == 2
        bot = uow.session.execute(select(Interaction).where(Interaction.speaker == Speaker.bot)).scalar_one()
        assert bot.latency_ms == 42.0
        assert bot.language == "en"


def test_turns_of_one_sender_share_a_conversation_and_come_back_in_order(kefu: Kefu) -> None:
    start = utcnow()
    turns = [
        _customer_turn("a", "你好", created_at=start),
        Turn("b", "web:abc", Speaker.bot, "您好！", created_at=start + timedelta(milliseconds=80)),
        _customer_turn("c", "hello", sender_id="telegram:99", created_at=start),
    ]
    with kefu.uow() as uow:
        stored = record_turns(uow.session, turns)
        uow.commit()
        assert stored[0].conversation_id == stored[1].conversation_id != stored[2].conversation_id
        assert [turn.text for turn in conversation_turns(uow.session, stored[0].conversation_id)] == ["你好", "您好！"]
        assert stored[2].channel is Channel.telegram


def test_huge_text_is_cut_and_text_without_letters_has_no_language(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        huge, emoji = record_turns(uow.session, [_customer_turn("h", "退" * 10_000), _customer_turn("e", "😡😡😡")])
        uow.commit()
    assert len(huge.text) == MAX_STORED_CHARS
    assert huge.text.endswith("…")
    assert emoji.text == "😡😡😡"
    assert emoji.language == "zh", "falls back to the conversation's language set by the first turn"


def test_guess_language_by_script() -> None:
    assert guess_language("我的order还没到") == "zh"
    assert guess_language("where is my order") == "en"
    assert guess_language("123 😀") is None


def test_the_bot_repeating_a_passport_number_as_an_order_is_stored_redacted(kefu: Kefu) -> None:
    turns = [
        _customer_turn("p1", "我的护照E73920418", entities=[{"entity": "order_number", "value": "73920418"}]),
        Turn(
            "p2",
            "web:abc",
            Speaker.bot,
            "请问是订单 73920418 的问题吗？",
            buttons=[{"title": "是 73920418", "payload": "/affirm"}],
        ),
    ]
    with kefu.uow() as uow:
        customer, bot = record_turns(uow.session, turns)
        uow.commit()
    assert (customer.text, customer.entities[0]["value"]) == ("我的护照[passport]", "[passport]")
    assert bot.text == "请问是订单 [passport] 的问题吗？"
    assert bot.buttons == [{"title": "是 [passport]", "payload": "/affirm"}]
