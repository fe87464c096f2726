"""The trained assistant understands Chinese, English and mixed messages over Rasa's real HTTP API."""

from __future__ import annotations

import pytest

from tests.support.nlu_messages import UNSEEN_FALLBACK_MESSAGES, UNSEEN_MESSAGES
from tests.support.rasa_stack import RasaStack

pytestmark = pytest.mark.rasa


def parse(stack: RasaStack, text: str) -> dict:
    """Rasa's own NLU result for ``text``."""
    response = stack.client.post(f"{stack.rasa_url}/model/parse", json={"text": text})
    response.raise_for_status()
    return response.json()


def entities(result: dict) -> dict[str, str]:
    """Entity name → value, skipping the language tag."""
    return {e["entity"]: str(e["value"]) for e in result["entities"] if e["entity"] != "language"}


@pytest.mark.parametrize(("text", "intent"), UNSEEN_MESSAGES)
def test_unseen_messages_get_the_right_intent(rasa_stack: RasaStack, text: str, intent: str) -> None:
    result = parse(rasa_stack, text)
    assert result["intent"]["name"] == intent, result["intent_ranking"][:3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我的order 12345 还没到", {"order_number": "12345"}),
        ("订单88812345，电话13812345678", {"order_number": "88812345", "phone": "13812345678"}),
        ("联系我 +86 13912345678 或 wang.li@163.com", {"phone": "+86 13912345678", "email": "wang.li@163.com"}),
        ("工单T000123有进展吗", {"ticket_number": "T000123"}),
        ("被多扣了58元", {"amount": "58元"}),
        ("I was charged $25.50 twice", {"amount": "$25.50"}),
        ("11月15日买的耳机坏了", {"date": "11月15日", "product": "耳机"}),
        ("my laptop arrived yesterday broken", {"product": "laptop", "date": "yesterday"}),
        ("五星好评", {"rating": "5"}),
        ("4 stars", {"rating": "4"}),
    ],
)
def test_entities_in_both_languages(rasa_stack: RasaStack, text: str, expected: dict[str, str]) -> None:
    assert entities(parse(rasa_stack, text)) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [("你好", "zh"), ("hello", "en"), ("我的order 12345 还没到", "zh"), ("my 订单 hasn't arrived yet", "en")],
)
def test_every_message_is_tagged_with_its_language(rasa_stack: RasaStack, text: str, language: str) -> None:
    tags = [e["value"] for e in parse(rasa_stack, text)["entities"] if e["entity"] == "language"]
    assert tags == [language]


def test_the_bot_answers_in_the_customers_language_and_follows_a_switch(rasa_stack: RasaStack) -> None:
    chinese = rasa_stack.send("nlu-lang-switch", "你好")
    assert chinese and "您好" in chinese[0]["text"]
    english = rasa_stack.send("nlu-lang-switch", "hello there")
    assert english and english[0]["text"].startswith("Hi")
    assert rasa_stack.tracker("nlu-lang-switch")["slots"]["language"] == "en"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "啊" * 10_000,
        "😀😀😀🙏",
        "\x00\x01\x02\x1b[31m",
        "<script>alert('x')</script>",
        "こんにちは、注文について",
    ],
)
def test_bad_input_goes_to_the_fallback_and_is_kept(rasa_stack: RasaStack, text: str) -> None:
    assert parse(rasa_stack, text)["intent"]["name"] == "nlu_fallback"
    sender = f"nlu-bad-{abs(hash(text))}"
    rasa_stack.send(sender, text)
    user_events = [e for e in rasa_stack.tracker(sender)["events"] if e["event"] == "user"]
    assert user_events[-1]["text"].strip() == text.strip()  # Rasa trims surrounding whitespace
    assert user_events[-1]["parse_data"]["intent"]["name"] == "nlu_fallback"


@pytest.mark.parametrize("text", [*UNSEEN_FALLBACK_MESSAGES, "Bonjour, où est ma commande?"])
def test_gibberish_and_unserved_latin_languages_go_to_the_fallback(rasa_stack: RasaStack, text: str) -> None:
    assert parse(rasa_stack, text)["intent"]["name"] == "nlu_fallback"


@pytest.mark.parametrize(
    "text", ["'; DROP TABLE tickets; --", "Bonjour, où est ma commande?", "{{7*7}} ${jndi:ldap://x}"]
)
def test_hostile_or_foreign_latin_text_is_parsed_and_kept(rasa_stack: RasaStack, text: str) -> None:
    assert parse(rasa_stack, text)["intent"]["name"]
    sender = f"nlu-hostile-{abs(hash(text))}"
    rasa_stack.send(sender, text)
    assert [e["text"] for e in rasa_stack.tracker(sender)["events"] if e["event"] == "user"] == [text]
