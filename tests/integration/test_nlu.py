"""The trained assistant understands Chinese, English and mixed messages over Rasa's real HTTP API."""

from __future__ import annotations

import pytest

from tests.rasa_stack import RasaStack

pytestmark = pytest.mark.rasa

# Phrasings that are not in data/nlu: the model must generalise, not remember.
UNSEEN_MESSAGES = [
    ("哈喽，有人没", "greet"),
    ("hey, anybody there?", "greet"),
    ("好的 那我先下线了 拜", "goodbye"),
    ("ok that's all from me, bye", "goodbye"),
    ("太谢谢你了", "thanks"),
    ("thanks a million", "thanks"),
    ("退货的话运费要我自己出吗", "ask_faq"),
    ("can i pay with apple pay", "ask_faq"),
    ("我的快递怎么还没到啊", "check_status"),
    ("where is my parcel, ordered last monday", "check_status"),
    ("我的order 67890 咋还没到", "check_status"),
    ("买的吹风机用一次就坏了，太坑了", "complain"),
    ("the shoes you sent are the wrong size and the box was ripped", "complain"),
    ("我要人工客服", "request_human"),
    ("let me talk to a real agent please", "request_human"),
    ("5分，挺满意", "give_rating"),
    ("I'd give it 4 stars", "give_rating"),
    ("订单号是 202311301234", "inform"),
    ("my order number is 99001122", "inform"),
    ("你是机器人还是真人", "chitchat"),
    ("帮我订一张明天去上海的火车票", "out_of_scope"),
    ("what's the weather in beijing", "out_of_scope"),
    # Added with the annotation guide (data/nlu/README.md): the customer's goal decides, one rule for mixed turns.
    ("我要投诉，订单12345一直没发货", "complain"),
    ("i want to complain, order 12345 still hasn't shipped", "complain"),
    ("耳机左边没声音，刚买没两天", "complain"),
    ("客服电话一直打不通，什么破服务", "complain"),
    ("帮我看下退款进度", "check_status"),
    ("has my refund gone through yet?", "check_status"),
    ("你们支持分期付款吗", "ask_faq"),
    ("do you ship to canada", "ask_faq"),
    ("好的谢谢 拜拜", "goodbye"),
    ("ok thanks, bye", "goodbye"),
    ("行，谢了", "thanks"),
    ("nope, that's not it", "deny"),
    ("推荐一部好看的电影", "out_of_scope"),
    ("can you book me a taxi", "out_of_scope"),
    ("你今天心情好吗", "chitchat"),
    ("东西是微波炉", "inform"),
    # Known misses of 2026-11-23, fixed by new, different examples in data/nlu/*_more.yml, never these strings.
    ("忘了", "deny"),
    ("跳过", "deny"),
    ("cancel", "deny"),
    ("算啦", "deny"),  # "forget it": affirm 0.43 before it joined the deny cue
    # The deny cue is a whole short reply: a complaint that opens with 不/没 is a complaint (zh_shopping's misses).
    ("不用了吧", "deny"),
    ("不好用，充一次电就没了", "complain"),
    ("没收到货，客服也不理人", "complain"),
    ("the kettle leaks", "complain"),
    ("the screen is cracked", "complain"),
    ("the agent was slow", "complain"),
]

# Gibberish in either script: no word of it was ever seen in training, so the bot asks to rephrase instead of guessing.
# Chinese onomatopoeia is made of particles every model has seen (吧, 啦, 啊), but never strung together.
UNSEEN_FALLBACK_MESSAGES = (
    "阿巴阿巴",
    "叽里呱啦",
    "啊啊啊啊",
    "哔哩哔哩吧啦",
    "噼里啪啦",
    "asdf",
    "asdfgh qwerty",
    "jjjjjjj",
    "Wo ist meine Bestellung?",
)


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
