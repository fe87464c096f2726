"""Ticket and order status: what the customer asks between filing a complaint and hearing back."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint_answers import order_numbers_said
from actions.runtime import UsesKefu, apologise_when_unavailable, customer_language
from actions.wording import status_label
from router.routing.customer_tickets import ticket_status


def _latest_entity(tracker: Tracker, name: str) -> str | None:
    value = next(tracker.get_latest_entity_values(name), None)
    return str(value) if value is not None else None


class ActionCheckStatus(UsesKefu, Action):
    """Tell the status of the ticket asked about (by number, by order, or the customer's latest)."""

    def name(self) -> str:
        """Name the status rules call."""
        return "action_check_status"

    @apologise_when_unavailable
    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Look the customer's own ticket up and answer ``utter_status``, or say there is no such ticket of theirs."""
        # Numbers in this message win over slots left from earlier turns.
        ticket_number = _latest_entity(tracker, "ticket_number")
        order_number = next(iter(order_numbers_said(tracker.latest_message or {})), None)
        if not ticket_number and not order_number:
            ticket_number = tracker.get_slot("ticket_number")
        # Only reads: on SQLite a read-only unit of work never queues behind the turn log's writes.
        ticket = ticket_status(
            self.kefu.reader(), sender_id=tracker.sender_id, ticket_number=ticket_number, order_number=order_number
        )
        if ticket is None:
            _say_not_found(dispatcher, ticket_number, order_number)
            # A number that is not theirs must not stick and be looked up again on "and now?".
            return [SlotSet("ticket_number", None)]
        language = customer_language(tracker)
        dispatcher.utter_message(
            response="utter_status", ticket_number=ticket.number, status=status_label(ticket.status, language)
        )
        return [SlotSet("ticket_number", ticket.number)]


def _say_not_found(dispatcher: CollectingDispatcher, ticket_number: str | None, order_number: str | None) -> None:
    # Unknown and someone else's ticket numbers get the very same words, so nothing leaks about other customers.
    if ticket_number:
        dispatcher.utter_message(response="utter_no_such_ticket", ticket_number=ticket_number)
    elif order_number:
        dispatcher.utter_message(response="utter_no_ticket_for_order", order_number=order_number)
    else:
        dispatcher.utter_message(response="utter_no_ticket")
