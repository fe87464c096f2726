"""Real Rasa + action server: a message not understood is asked to be rephrased once, the second in a row offers a
human; an FAQ question below the similarity threshold is told so and offered a human; "yes" connects one."""

from __future__ import annotations

import pytest

from tests.support.rasa_stack import RasaStack
from tests.support.replies import TICKET_NUMBER, texts

pytestmark = pytest.mark.rasa

# sender, two messages the NLU cannot read, yes, and the words of: rephrase, the offer, the queue.
FALLBACKS = {
    "zh": ("web:fallback-zh", "阿巴阿巴咕噜", "哔哩哔哩吧啦", "需要", "换个说法", "需要为您转接人工", "排在第"),
    "en": ("fallback-en", "blorp snarfle", "wibble wobble zonk", "yes please", "another way", "human agent", "number"),
}


@pytest.mark.parametrize("language", FALLBACKS)
def test_not_understood_twice_asks_to_rephrase_then_offers_a_human(rasa_stack: RasaStack, language: str) -> None:
    sender, first, second, yes, rephrase, offer, queue = FALLBACKS[language]
    asked = texts(rasa_stack.send(sender, first))
    assert rephrase in asked, asked
    offered = texts(rasa_stack.send(sender, second))
    assert offer in offered and rephrase not in offered, offered
    connected = texts(rasa_stack.send(sender, yes))
    assert TICKET_NUMBER.search(connected) and queue in connected, connected
    assert rasa_stack.tracker(sender)["paused"]


# sender, an FAQ question the FAQ table has no close answer to, the reply to the offer, and the words expected.
UNSURE_FAQ = {
    "zh-yes": ("web:unsure-faq-zh", "会员积分可以兑换机票吗？", "需要", "不太确定", "排在第"),
    "en-yes": ("unsure-faq-en", "do you ship to antarctica by submarine?", "yes", "not sure", "in the queue"),
    "zh-no": ("web:unsure-faq-no-zh", "会员积分可以兑换机票吗？", "不用了", "不太确定", "还有其他"),
    "en-no": ("unsure-faq-no-en", "do you ship to antarctica by submarine?", "no thanks", "not sure", "anything else"),
}


@pytest.mark.parametrize("case", UNSURE_FAQ)
def test_an_faq_below_the_threshold_says_unsure_and_offers_a_human(rasa_stack: RasaStack, case: str) -> None:
    sender, question, answer, unsure, then = UNSURE_FAQ[case]
    replies = rasa_stack.send(sender, question)
    assert unsure in replies[0]["text"], replies
    assert len(replies) == 2 and replies[1].get("buttons"), replies  # the offer, with yes/no buttons
    followed = texts(rasa_stack.send(sender, answer))
    assert then in followed, followed
    assert rasa_stack.tracker(sender)["paused"] is case.endswith("yes")
