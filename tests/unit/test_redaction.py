"""PII redaction: every kind of personal data is replaced, order numbers and ordinary text survive."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.crm.redaction import PiiKind, find_pii, known_pii, luhn_valid, redact, redact_entities, redact_json


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
        ("老身份证 110101900307451 谢谢", "老身份证 [id] 谢谢"),
        ("my old ID card 440301850612123.", "my old ID card [id]."),
        ("护照号码：E12345678", "护照号码：[passport]"),
        ("我的护照是EA1234567，下周出国", "我的护照是[passport]，下周出国"),
        ("passport G87654321 expires soon", "passport [passport] expires soon"),
        ("passport no. 123456789 thanks", "passport no. [passport] thanks"),
        ("My passport number is K1234567.", "My passport number is [passport]."),
        ("请寄到北京市朝阳区建国路88号SOHO现代城5号楼2单元1203室，谢谢", "请寄到[address]，谢谢"),
        ("地址：广东省深圳市南山区科技园南路15号", "地址：[address]"),
        ("上海市浦东新区张江路100弄3号", "[address]"),
        ("我住在阳光小区5栋2单元301室", "我住在[address]"),
        ("快递放3栋2单元501吧", "快递放[address]吧"),
        ("快递员说放在建国路８８号门口", "快递员说放在[address]门口"),
        ("I live at 221B Baker Street, London", "I live at [address], London"),
        ("ship to 12 main st apt 4 please", "ship to [address] please"),
        ("send it to 1600 Pennsylvania Avenue NW", "send it to [address]"),
        ("123 Main St, Springfield, IL 62704 is my address", "[address] is my address"),
        ("Flat 3, 12 High Street, London SW1A 2AA", "Flat 3, [address]"),
        ("postcode SW1A 1AA", "postcode [postcode]"),
        ("my zip code is 90210-1234", "my zip code is [postcode]"),
        ("邮编 100020", "邮编 [postcode]"),
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
        "订单 2023112300012345",  # 16 digits that pass Luhn, but no card number starts with 20
        "订单号 202311301234567890 到哪了",  # 18 digits, no province 20: not an ID
        "工单 T000042 怎么样了",
        "我知道3号发货",
        "我在路上，3号到",
        "逛街2号去",
        "I waited 3 days on the road",
        "Seen 3 times by Dr Smith",
        "I bought 2 New Balance shoes",
        "my passport expired in 2019",
        "order 90210 has not arrived",  # a bare 5-digit number is an order, not a ZIP code
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


def test_every_kind_in_one_english_message_is_found_in_order() -> None:
    text = (
        "I'm Li Lei, passport E12345678, ID 110101199003074514, card 4111 1111 1111 1111, "
        "phone +44 20 7946 0958, mail li@example.org, postcode SW1A 1AA, I live at 12 High Street"
    )
    kinds = [match.kind for match in find_pii(text)]
    assert kinds == [
        PiiKind.passport,
        PiiKind.id_number,
        PiiKind.card,
        PiiKind.phone,
        PiiKind.email,
        PiiKind.postcode,
        PiiKind.address,
    ]


def test_redact_json_redacts_every_string_but_the_kept_keys() -> None:
    event = {
        "event": "user",
        "text": "电话13812345678",
        "parse_data": {"entities": [{"entity": "phone", "value": "13812345678"}], "text": "电话13812345678"},
        "message_id": "13812345678",
        "confidence": 0.9,
    }
    assert redact_json(event, keep=frozenset({"event", "message_id"})) == {
        "event": "user",
        "text": "电话[phone]",
        "parse_data": {"entities": [{"entity": "phone", "value": "[phone]"}], "text": "电话[phone]"},
        "message_id": "13812345678",
        "confidence": 0.9,
    }


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


def _with_luhn_check_digit(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("one check digit always fits")


def _card(prefix: str, rest: str, separator: str) -> str:
    number = _with_luhn_check_digit(prefix + rest)
    return separator.join(number[i : i + 4] for i in range(0, len(number), 4))


cards = st.builds(
    _card,
    st.sampled_from(["4", "51", "55", "2221", "34", "37", "35", "6011", "62"]),
    st.from_regex(r"[0-9]{11,14}", fullmatch=True),
    st.sampled_from(["", " ", "-"]),
)
chinese_ids = st.builds(
    lambda region, born, sequence, check: f"{region}{born:%Y%m%d}{sequence}{check}",
    st.sampled_from(["110101", "310115", "440305", "510104", "650102"]),
    st.dates(min_value=date(1920, 1, 1), max_value=date(2020, 12, 31)),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.sampled_from(list("0123456789X")),
)
old_chinese_ids = st.builds(
    lambda region, born, sequence: f"{region}{born:%y%m%d}{sequence}",
    st.sampled_from(["110101", "310115", "440305", "510104", "650102"]),
    st.dates(min_value=date(1920, 1, 1), max_value=date(1999, 12, 31)),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
)
phones = st.one_of(
    st.from_regex(r"(\+86 ?)?1[3-9][0-9]{9}", fullmatch=True),
    st.from_regex(r"0[1-9][0-9]{1,2}-[1-9][0-9]{6,7}", fullmatch=True),
    st.from_regex(r"\+(1|44|49|852) [0-9]{3} [0-9]{3} [0-9]{4}", fullmatch=True),
    st.from_regex(r"\([2-9][0-9]{2}\) [0-9]{3}-[0-9]{4}", fullmatch=True),
)
passports = st.from_regex(r"[EG][0-9]{8}|E[A-HJ-NP-Z][0-9]{7}", fullmatch=True)
personal_data = st.one_of(cards, chinese_ids, old_chinese_ids, phones, passports)
# The bot's own references: plain order numbers, date-led ones, lettered ones and ticket numbers.
order_numbers = st.one_of(
    st.from_regex(r"[1-9][0-9]{4,9}", fullmatch=True),
    st.from_regex(r"20[0-9]{2}(0[1-9]|1[0-2])[0-2][0-9][0-9]{4,12}", fullmatch=True),
    st.from_regex(r"[A-D][0-9]{4}-[0-9]{2}", fullmatch=True),
    st.from_regex(r"T[0-9]{6}", fullmatch=True),
)
# Customers' words without a digit or an at sign cannot hold any of the identifiers above.
words = st.text(
    st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="@＠"),
    max_size=200,
)
frames = st.sampled_from(["我的是{}，谢谢", "请核对 {} 好吗", "number: {}.", "it's {}", "{}"])


@settings(max_examples=300)
@given(personal_data, frames)
def test_no_generated_phone_card_id_or_passport_survives(value: str, frame: str) -> None:
    redacted = redact(frame.format(value))
    assert not re.search(r"\d{3}", redacted), redacted


@given(order_numbers, st.sampled_from(["订单号{}到哪了", "order {} hasn't arrived", "工单{}怎么样了", "#{}"]))
def test_order_and_ticket_numbers_the_bot_needs_are_never_redacted(number: str, frame: str) -> None:
    assert redact(frame.format(number)) == frame.format(number)


@given(words)
def test_text_without_digits_or_at_signs_is_unchanged(text: str) -> None:
    assert redact(text) == text


@settings(max_examples=300)
@given(st.lists(st.one_of(words, personal_data, order_numbers), max_size=6).map(" ".join))
def test_redaction_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


def test_a_card_number_right_after_another_number_is_still_found() -> None:
    assert redact("电话 5551234 4111 1111 1111 1111") == "电话 5551234 [card]"
    assert redact("010-3000000 4000 0000 0000 6") == "[phone] [card]"


def test_two_phone_numbers_side_by_side_are_both_replaced() -> None:
    assert redact("+1 555 010 0000 (200) 555-0100") == "[phone] [phone]"


def test_known_personal_data_is_redacted_where_it_comes_back_without_its_label() -> None:
    known = known_pii("我的护照E73920418，电话13912345670")
    assert known == {"E73920418": PiiKind.passport, "73920418": PiiKind.passport, "13912345670": PiiKind.phone}
    assert redact("请问是订单 73920418 的问题吗？", known) == "请问是订单 [passport] 的问题吗？"
    assert redact("订单 173920418 到了", known) == "订单 173920418 到了", "only the whole number, not digits within one"
    entities = [{"entity": "order_number", "value": "73920418"}, {"entity": "order_number", "value": "12345"}]
    assert [e["value"] for e in redact_entities(entities, known)] == ["[passport]", "12345"]
