"""Handoff to a human: open or join a ticket, pause the bot, tell the customer their place in the queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint import EARLIER_ORDER_SLOT, clear_form_slots
from actions.complaint import FORM_NAME as COMPLAINT_FORM
from actions.complaint_answers import NO_ORDER, order_numbers_said
from actions.runtime import UsesKefu, apologise_when_unavailable, customer_language
from router.routing.customer_tickets import hand_off, load_triage

# The agent sees the last few things the customer said as the ticket's description.
CONTEXT_MESSAGES = 5
_NO_CONTEXT = {"zh": "客户要求转人工。", "en": "The customer asked for a human agent."}
# Orders named earlier in the conversation that the agent may need, at most this many (the most recent).
MAX_EARLIER_ORDERS = 3
_EARLIER_ORDERS = {
    "zh": "【对话中此前提到的订单，客户未确认与本次请求有关】{orders}",
    "en": "[Orders mentioned earlier in the conversation, not confirmed as this request's] {orders}",
}


def recent_customer_text(tracker: Tracker, language: str) -> str:
    """The customer's last few messages (not button payloads), oldest first, as a ticket description."""
    texts = [
        event.get("text") or ""
        for event in tracker.events
        if event.get("event") == "user" and not (event.get("text") or "").startswith("/")
    ]
    texts = [text.strip() for text in texts if text.strip()][-CONTEXT_MESSAGES:]
    return "\n".join(texts) or _NO_CONTEXT[language]


@dataclass(frozen=True)
class OrderNumbers:
    """The order a handoff is about, if the customer gave one for it, and the orders they mentioned before."""

    given: str | None
    earlier: tuple[str, ...]


def _order_number(value: object) -> str | None:
    return None if value in (None, "", NO_ORDER) else str(value)


def order_numbers(tracker: Tracker) -> OrderNumbers:
    """Which order this request is about: one named in the request itself or answered to the complaint form.

    The order_number slot also keeps what an earlier status question named ("where is order 12345?"); that order may
    have nothing to do with why the customer now wants a person, so it is only mentioned, never the ticket's.
    """
    # The slots may keep a number from an earlier session whose messages this tracker no longer holds: the oldest.
    kept = (tracker.get_slot("order_number"), tracker.get_slot(EARLIER_ORDER_SLOT))
    mentioned = [number for number in map(_order_number, kept) if number]
    loop, slot_set_in_complaint = None, False
    for event in tracker.events:
        if event.get("event") == "active_loop":
            loop = event.get("name")
        elif event.get("event") == "slot" and event.get("name") == "order_number":
            slot_set_in_complaint = loop == COMPLAINT_FORM
        elif event.get("event") == "user":
            mentioned += order_numbers_said({**(event.get("parse_data") or {}), "text": event.get("text")})
    named_now = _order_number(next(iter(order_numbers_said(tracker.latest_message or {})), None))
    slot = _order_number(tracker.get_slot("order_number"))
    given = named_now or (slot if slot_set_in_complaint else None)
    # Most recent last, each once, leaving out the request's own order.
    earlier = [n for n in dict.fromkeys(reversed(mentioned)) if n != given][:MAX_EARLIER_ORDERS]
    return OrderNumbers(given=given, earlier=tuple(reversed(earlier)))


def earlier_orders_note(earlier: tuple[str, ...], language: str) -> str:
    """The line that shows the agent orders mentioned before, labelled so none is taken for the ticket's own."""
    return _EARLIER_ORDERS[language].format(orders=", ".join(earlier))


class ActionHandoff(UsesKefu, Action):
    """Hand the conversation to a human agent and pause the bot until the ticket is resolved."""

    def name(self) -> str:
        """Name the handoff rules call."""
        return "action_handoff"

    @apologise_when_unavailable
    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Queue the customer, tell them their position, and pause (the web app resumes the bot)."""
        language = customer_language(tracker)
        orders = order_numbers(tracker)
        triage = load_triage(self.kefu)
        handoff = hand_off(
            self.kefu.uow(),
            triage,
            sender_id=tracker.sender_id,
            language=language,
            text=recent_customer_text(tracker, language),
            order_number=orders.given,
            note=earlier_orders_note(orders.earlier, language) if orders.earlier else "",
        )
        number = handoff.number
        if handoff.with_agent:
            dispatcher.utter_message(response="utter_agent_has_ticket", ticket_number=number)
        else:
            dispatcher.utter_message(response="utter_queue_position", ticket_number=number, position=handoff.position)
        # A paused bot never predicts its own action_listen; recording one now means that when the router resumes
        # the conversation and injects EXTERNAL_ticket_resolved, the rules see a normal listening state.
        events = [SlotSet("ticket_number", number), *clear_form_slots()]
        return [*events, ConversationPaused(), ActionExecuted("action_listen")]
