"""PII redaction: every kind of personal data is replaced, order numbers and ordinary text survive."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.crm.redaction import PiiKind, find_pii, luhn_valid, redact, redact_entities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的电话13812345678谢谢", "我的电话[phone]谢谢"),
        ("手机 138-1234-5678", "手机 [phone]"),
        ("call me at +86 138 1234 5678 please", "call me at [phone] please"),
        ("电话１３８１２３４５６７８", "电话[phone]"),
        ("座机 010-12345678", "座机 [phone]"),
        ("office (0755) 1234 5678", "office [phone]"),
        ("US number +1 (555) 123-4567.", "US number [phone]."),
        ("or 555-123-4567", "or [phone]"),
        ("email me: li.lei+shop@example.com.cn!", "email me: [email]!"),
        ("邮箱是wang_fang@qq.com吗", "邮箱是[email]吗"),
        ("身份证号110101199003074514", "身份证号[id]"),
        ("ID 11010119900307451x ok", "ID [id] ok"),
        ("卡号 4111 1111 1111 1111 扣款两次", "卡号 [card] 扣款两次"),
        ("card 6011-0009-9013-9424", "card [card]"),
        ("paid with 5555555555554444", "paid with [card]"),
    ],
)
def test_personal_data_is_replaced_by_a_placeholder(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "我的order 12345 还没到",
        "订单号 202311230001234 到哪了",  # 15 digits, fails Luhn: an order number, not a card
        "ticket T000042 status?",
        "退款 299.00 元",
        "2023-11-23 下单的",
        "18 digits but no birth date 123456789012345678",
        "",
    ],
)
def test_ordinary_text_and_order_numbers_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_several_kinds_in_one_message_are_all_found_in_order() -> None:
    text = "我叫李雷，电话13912345678，邮箱lilei@example.com，卡号4111111111111111"
    kinds = [match.kind for match in find_pii(text)]
    assert kinds == [PiiKind.phone, PiiKind.email, PiiKind.card]
    assert redact(text) == "我叫李雷，电话[phone]，邮箱[email]，卡号[card]"


def test_luhn_accepts_real_test_cards_and_rejects_a_changed_digit() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_entity_values_of_personal_kinds_are_replaced_and_others_kept() -> None:
    entities = [
        {"entity": "phone", "value": "13812345678", "start": 0, "end": 11},
        {"entity": "email", "value": "a@b.com"},
        {"entity": "order_number", "value": "12345"},
        {"entity": "product", "value": "call 13812345678"},
    ]
    assert [entity["value"] for entity in redact_entities(entities)] == ["[phone]", "[email]", "12345", "call [phone]"]
    assert entities[0]["value"] == "13812345678", "the caller's list must not be changed"


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["我的手机是", "phone: ", "", "联系"]))
def test_any_chinese_mobile_number_is_redacted(number: str, prefix: str) -> None:
    redacted = redact(f"{prefix}{number}，谢谢")
    assert number not in redacted
    assert "[phone]" in redacted


@given(st.text(max_size=300))
def test_redaction_never_crashes_and_leaves_no_email(text: str) -> None:
    redacted = redact(text + " x@example.org")
    assert "x@example.org" not in redacted
