"""Handoff to a human: open or join a ticket, pause the bot, tell the customer their place in the queue."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint import clear_form_slots
from actions.complaint_answers import NO_ORDER
from actions.runtime import UsesKefu, apologise_when_unavailable, customer_language
from actions.ticketing import hand_off, load_triage

# The agent sees the last few things the customer said as the ticket's description.
CONTEXT_MESSAGES = 5
_NO_CONTEXT = {"zh": "客户要求转人工。", "en": "The customer asked for a human agent."}


def recent_customer_text(tracker: Tracker, language: str) -> str:
    """The customer's last few messages (not button payloads), oldest first, as a ticket description."""
    texts = [
        event.get("text") or ""
        for event in tracker.events
        if event.get("event") == "user" and not (event.get("text") or "").startswith("/")
    ]
    texts = [text.strip() for text in texts if text.strip()][-CONTEXT_MESSAGES:]
    return "\n".join(texts) or _NO_CONTEXT[language]


def _given_order_number(tracker: Tracker) -> str | None:
    """The order number the customer already gave (say, halfway through a complaint), for the agent's ticket."""
    order_number = tracker.get_slot("order_number")
    return None if order_number in (None, NO_ORDER) else str(order_number)


class ActionHandoff(UsesKefu, Action):
    """Hand the conversation to a human agent and pause the bot until the ticket is resolved."""

    def name(self) -> str:
        """Name the handoff rules call."""
        return "action_handoff"

    @apologise_when_unavailable
    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Queue the customer, tell them their position, and pause (the web app resumes the bot)."""
        language = customer_language(tracker)
        triage = load_triage(self.kefu)
        with self.kefu.uow() as uow:
            handoff = hand_off(
                uow.session,
                triage,
                sender_id=tracker.sender_id,
                language=language,
                text=recent_customer_text(tracker, language),
                order_number=_given_order_number(tracker),
            )
            uow.commit()
            number = handoff.ticket.number
        if handoff.with_agent:
            dispatcher.utter_message(response="utter_agent_has_ticket", ticket_number=number)
        else:
            dispatcher.utter_message(response="utter_queue_position", ticket_number=number, position=handoff.position)
        # A paused bot never predicts its own action_listen; recording one now means that when the router resumes
        # the conversation and injects EXTERNAL_ticket_resolved, the rules see a normal listening state.
        events = [SlotSet("ticket_number", number), *clear_form_slots()]
        return [*events, ConversationPaused(), ActionExecuted("action_listen")]
