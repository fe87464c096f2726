"""Language detection and the bad-input guard decide how the bot answers; both are plain functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.nlu.input_guard import MAX_MESSAGE_CHARACTERS, bad_input_reason
from bot.nlu.language import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("你好", "zh"),
        ("我的快递到哪了", "zh"),
        ("hello", "en"),
        ("Where is my order?", "en"),
        ("我的order 12345 还没到", "zh"),
        ("帮我查下tracking number", "zh"),
        ("my 订单 hasn't arrived yet", "en"),
        ("こんにちは", "en"),
        ("Здравствуйте, где мой заказ", "en"),
        ("12345", None),
        ("😀🙏", None),
        ("", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


@given(st.text())
def test_detect_language_never_fails_and_only_says_zh_or_en(text: str) -> None:
    assert detect_language(text) in {"zh", "en", None}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("  \n\t", "empty"),
        (None, "empty"),
        ("投诉" * (MAX_MESSAGE_CHARACTERS // 2 + 1), "too_long"),
        ("😀😀😀", "no_words"),
        ("\x00\x01\x1b[31m\x1b[0m", "no_words"),
        ("?!…。", "no_words"),
        ("<script>alert(1)</script>", "markup"),
        ("<img src=x onerror=alert(1)>", "markup"),
        ("注文はどこですか", "other_language"),
        ("안녕하세요", "other_language"),
    ],
)
def test_bad_input_reason(text: str | None, reason: str) -> None:
    assert bad_input_reason(text) == reason


@pytest.mark.parametrize(
    "text", ["12345", "T000123", "5", "我要投诉", "where is my order", "I paid 5 < 10 dollars", "投诉" * 100]
)
def test_real_messages_are_not_bad_input(text: str) -> None:
    assert bad_input_reason(text) is None
