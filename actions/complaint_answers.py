"""What a customer's reply to the complaint form's questions means: plain Python, no Rasa.

A customer asked for the order number often answers with the problem, "I don't know", a question of their own or
"never mind". The form's validation reads each reply here and acts on the answer it finds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from router.crm.redaction import known_pii

NO_ORDER = "none"
MIN_DESCRIPTION_WEIGHT = 4
MAX_ORDER_NUMBER_CHARS = 32
# Intents whose messages ask something rather than answer the form, when they are worded as a question.
QUESTION_INTENTS = frozenset({"ask_faq", "check_status"})

_NO_ORDER_ANSWERS = re.compile(
    r"^\s*(none|no|nope|nah|n/?a|no\s+idea|not\s+sure|"
    r"(i\s+)?(don'?t|do\s+not|didn'?t)\s+(have|know|remember|get|keep)(\s+(one|it|that|(the|an?|my)\s+\w+(\s+number)?))*|"
    r"(i\s+)?(forgot|lost)(\s+(it|the\s+\w+(\s+number)?))?|(i\s+)?can'?t\s+(remember|find)(\s+(it|the\s+\w+))?|"
    r"no\s+order(\s+number)?|there\s+is\s+no\s+order(\s+number)?|"
    r"没有|无|沒有|没|不知道|不清楚|不记得了?|记不得了?|记不清了?|忘了|忘记了|我忘了|找不到了?|没有订单号?|没订单号?|"
    r"不知道订单号|订单号忘了|没有单号)\s*[.!。！~～]?\s*$",
    re.IGNORECASE,
)
_CANCEL = re.compile(
    r"^\s*(cancel|never\s*mind|forget\s+it|stop|bye|goodbye|算了|取消|不用了|不要了|再见|拜拜)"
    r"(\s*(吧|了|啦|it|then|please|thanks))*[\s,，。.!！~～]*$|^\s*算了[,，、\s]|"
    r"(don'?t|do\s+not|no\s+longer)\s+want\s+to\s+complain|(cancel|drop|withdraw|forget(\s+about)?)\s+(the|my)\s+complaint|"
    r"不投诉了|不想投诉了|不要投诉了|先不投诉|取消投诉|撤销投诉|不用投诉了",
    re.IGNORECASE,
)
# 几天/多久 ask only on their own: "好几天"/"十几天"/"过几天"/"几天前"/"都几天了" (a few days) and "没(过)多久" (not
# long) tell, not ask.
_QUESTION = re.compile(
    r"[?？]|[吗嘛呢么]\s*[。!！~～]?\s*$|怎么|怎样|如何|什么时候|(?<![没不])(?<!没过)多久|"
    r"(?<![好这前那没过头十些])几天(?![前后了])|多少|哪里|哪儿|能不能|可不可以|是否|有没有|"
    r"^\s*(what|when|where|how|why|who|which|can|could|do|does|did|is|are|will|would|should|may)\b",
    re.IGNORECASE,
)
# An order reference with letters in it ("A2023-77"); plain digits come from the NLU's order_number entity.
_LETTERED_ORDER_NUMBER = re.compile(r"(?<![A-Za-z0-9])(?=[A-Za-z\-]*\d)(?=[\d\-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9\-]{3,}")
_TICKET_NUMBER = re.compile(r"^[Tt]\d{6}$")
# Openers that say a complaint is coming but not what it is about.
_GENERIC_COMPLAINT = re.compile(
    r"(i\s+)?(want|would like|wanna|need)\s+to\s+(make\s+a\s+|file\s+a\s+)?complain(t)?|i\s+have\s+a\s+complaint|"
    r"complaint|complain|我要投诉|我想投诉|我要投訴|投诉|投訴|我要|我想|一下",
    re.IGNORECASE,
)
# Words that only introduce the order number ("订单号是 …", "my order number is …"), not what went wrong.
_ORDER_REFERENCE_WORDS = re.compile(
    r"订单号码?|订单|单号|号码|\b(my|the|order|number|no|is|it'?s|here|this|that|one|ref(erence)?)\b|#",
    re.IGNORECASE,
)
# Short answers to "is this about order 12345?"; the NLU's affirm/deny decide the longer ones.
_YES = re.compile(
    r"^\s*(yes|yeah|yep|yup|y|ya|right|correct|exactly|sure|ok(ay)?|that'?s\s+(it|right|correct|the\s+one)|"
    r"yes,?\s+(it\s+is|that\s+one|that'?s\s+(it|the\s+one))|"
    r"是|是的|是啊|是呀|对|对的|对啊|对呀|嗯|嗯嗯|恩|没错|就是|就是它|就是这个|就是这单|是这个|是这单|是这个订单|对就是这个)"
    r"[\s,，.!。！~～]*$",
    re.IGNORECASE,
)
_NO = re.compile(
    r"^\s*(no|nope|nah|wrong(\s+(one|order))?|not\s+(that|this)(\s+(one|order))?|"
    r"no,?\s+(it'?s\s+)?(not\s+(that|this)(\s+one)?|(a\s+)?(different|another|other)(\s+(one|order))?)|"
    r"(a\s+)?(different|another|other)\s+(one|order)|"
    r"不是|不是的|不对|不是这个|不是这单|不是这个订单|错了|不是那个|是另一个|另一个|另外一个|别的订单|是别的订单)"
    r"[\s,，.!。！~～]*$",
    re.IGNORECASE,
)
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


class Reply(Enum):
    """What a reply to one of the form's questions turned out to be."""

    order_number = "order_number"
    no_order = "no_order"
    cancel = "cancel"
    question = "question"
    description = "description"
    unreadable = "unreadable"
    not_this_order = "not_this_order"


@dataclass(frozen=True)
class ReadReply:
    """A reply read: its kind and, for an order number, the number as the ticket stores it."""

    kind: Reply
    order_number: str | None = None


def order_number_in(text: str) -> str | None:
    """An order reference with letters and digits in ``text`` ("A2023-77"), None when there is none.

    A passport number ("E73920418") has the same shape: personal data is never taken for an order.
    """
    personal = known_pii(text)
    for match in _LETTERED_ORDER_NUMBER.finditer(text):
        candidate = match.group(0).strip("-")
        if (
            len(candidate) <= MAX_ORDER_NUMBER_CHARS
            and not _TICKET_NUMBER.match(candidate)
            and candidate not in personal
        ):
            return candidate
    return None


def order_numbers_said(message: dict[str, Any]) -> list[str]:
    """The order_number entities of a message (``tracker.latest_message`` or a user event's ``parse_data``).

    The NLU's pattern takes any run of digits, so the digits of a passport or an ID number in the same message
    ("护照E73920418", "passport number 548213907") are left out: they are personal data, not an order.
    """
    values = [str(e.get("value")) for e in message.get("entities") or [] if e.get("entity") == "order_number"]
    if not values:
        return []
    personal = known_pii(str(message.get("text") or ""))
    return [value for value in values if value not in personal]


def is_no_order_answer(text: str) -> bool:
    """Whether the customer says they have no order number or do not know it ("none", "忘了")."""
    return bool(_NO_ORDER_ANSWERS.match(text))


def is_cancellation(text: str) -> bool:
    """Whether the customer drops the complaint ("cancel", "never mind", "算了，不投诉了")."""
    return bool(_CANCEL.search(text))


def is_question(text: str) -> bool:
    """Whether a message is worded as a question rather than a statement."""
    return bool(_QUESTION.search(text))


def is_descriptive(text: object) -> bool:
    """Whether a complaint text says what went wrong, not just "I want to complain" or "asdf"."""
    if not isinstance(text, str) or text.startswith("/"):
        return False
    remainder = _GENERIC_COMPLAINT.sub(" ", text)
    # A Chinese character carries about as much as half an English word.
    weight = len(_CJK_CHAR.findall(remainder)) + 2 * len(_LATIN_WORD.findall(remainder))
    return weight >= MIN_DESCRIPTION_WEIGHT


def description_besides(text: str, order_number: str) -> str | None:
    """The message as a description when it says what went wrong besides giving the order number, else None."""
    remainder = _ORDER_REFERENCE_WORDS.sub(" ", text.replace(order_number, " "))
    return text.strip() if is_descriptive(remainder) and not is_question(text) else None


def _asks_something(text: str, intent: str | None) -> bool:
    return intent in QUESTION_INTENTS and is_question(text)


def read_order_reply(text: str, intent: str | None, entity_order_number: str | None) -> ReadReply:
    """Read the reply to "which order is it?": a number, "none", a cancellation, a question or the problem itself."""
    text = text.strip()
    if entity_order_number:
        return ReadReply(Reply.order_number, entity_order_number)
    if is_no_order_answer(text):
        return ReadReply(Reply.no_order, NO_ORDER)
    if is_cancellation(text) or intent == "goodbye":
        return ReadReply(Reply.cancel)
    lettered = order_number_in(text)
    if lettered is not None:
        return ReadReply(Reply.order_number, lettered)
    if _asks_something(text, intent):
        return ReadReply(Reply.question)
    if intent == "deny":
        return ReadReply(Reply.no_order, NO_ORDER)
    return ReadReply(Reply.description if is_descriptive(text) else Reply.unreadable)


def read_description_reply(text: str, intent: str | None) -> ReadReply:
    """Read the reply to "what happened?": the description, a cancellation, a question, or too little to go on."""
    text = text.strip()
    if is_cancellation(text) or intent == "goodbye":
        return ReadReply(Reply.cancel)
    if _asks_something(text, intent):
        return ReadReply(Reply.question)
    return ReadReply(Reply.description if is_descriptive(text) else Reply.unreadable)


def read_confirmation_reply(text: str, intent: str | None, entity_order_number: str | None, earlier: str) -> ReadReply:
    """Read the reply to "is this about order 12345?": yes, no, another number, or an answer to "which order?"."""
    text = text.strip()
    if entity_order_number and entity_order_number != earlier:
        return ReadReply(Reply.order_number, entity_order_number)
    if is_cancellation(text) or intent == "goodbye":
        return ReadReply(Reply.cancel)
    if _asks_something(text, intent):
        return ReadReply(Reply.question)
    if entity_order_number == earlier or _YES.match(text) or (intent == "affirm" and not _NO.match(text)):
        return ReadReply(Reply.order_number, earlier)
    if _NO.match(text) or intent == "deny":
        return ReadReply(Reply.not_this_order)
    return read_order_reply(text, intent, None)
