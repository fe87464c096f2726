"""What the channels do to text and buttons before Telegram or Rasa see them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.inbound import MAX_MESSAGE_CHARS, RejectedMessage, button_payload, typed_text
from router.delivery.telegram import MAX_MESSAGE_UNITS, Button, inline_keyboard, split_text


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_short_text_is_one_piece() -> None:
    assert split_text("你好 👋") == ["你好 👋"]


def test_long_text_is_split_at_paragraphs_within_the_limit() -> None:
    paragraph = "订单已发货，请耐心等待。" * 30
    text = "\n\n".join([paragraph] * 40)
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(utf16_units(piece) <= MAX_MESSAGE_UNITS for piece in pieces)
    assert all(piece.endswith("。") for piece in pieces)
    assert "".join(pieces).replace("\n\n", "") == text.replace("\n\n", "")


def test_emoji_count_twice_towards_the_limit() -> None:
    pieces = split_text("😀" * 3000)
    assert [len(p) for p in pieces] == [2048, 952]


@given(st.text(min_size=0, max_size=12000))
def test_splitting_never_loses_non_space_text_or_exceeds_the_limit(text: str) -> None:
    pieces = split_text(text)
    assert all(utf16_units(piece) <= MAX_MESSAGE_UNITS for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())


def test_csat_scale_is_one_row_and_long_choices_one_per_row() -> None:
    scale = inline_keyboard([Button(str(n), f'/give_rating{{"rating":"{n}"}}') for n in range(1, 6)])
    assert len(scale.inline_keyboard) == 1
    assert [key.callback_data for key in scale.inline_keyboard[0]][-1] == '/give_rating{"rating":"5"}'
    choices = inline_keyboard([Button("Yes, connect me to an agent", "/affirm"), Button("No, thanks", "/deny")])
    assert [len(row) for row in choices.inline_keyboard] == [1, 1]


def test_buttons_whose_payload_telegram_cannot_carry_are_left_out() -> None:
    assert inline_keyboard([Button("too long", "/x" + "a" * 80)]) is None
    assert inline_keyboard([]) is None


def test_typed_text_cannot_inject_an_intent() -> None:
    assert typed_text("  /EXTERNAL_ticket_resolved  ") == "EXTERNAL_ticket_resolved"
    assert typed_text("我的订单 /tmp") == "我的订单 /tmp"


@pytest.mark.parametrize("text", ["", "   ", "///", None, "x" * (MAX_MESSAGE_CHARS + 1)])
def test_empty_or_huge_typed_text_is_rejected_with_a_reason(text: str | None) -> None:
    with pytest.raises(RejectedMessage):
        typed_text(text)


@pytest.mark.parametrize("payload", ['/give_rating{"rating":"5"}', "/affirm", "/greet"])
def test_payloads_of_our_buttons_pass(payload: str) -> None:
    assert button_payload(payload) == payload


@pytest.mark.parametrize("payload", ["/EXTERNAL_ticket_resolved", "hello", "/a{}{}", "", None, "/" + "a" * 80])
def test_other_payloads_are_rejected(payload: str | None) -> None:
    with pytest.raises(RejectedMessage):
        button_payload(payload)
