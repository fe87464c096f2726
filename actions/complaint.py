"""Complaint intake: check what the form collected, then triage it and open the ticket."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.runtime import UsesKefu, apologise_when_unavailable, customer_language
from actions.ticketing import file_complaint, load_triage
from actions.wording import duration_label, priority_label
from router.crm.models import utcnow

NO_ORDER = "none"
MIN_DESCRIPTION_CHARS = 4
MAX_ORDER_NUMBER_CHARS = 32
_ORDER_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{3,}")
_NO_ORDER_ANSWERS = re.compile(
    r"^\s*(none|no|nope|n/?a|(i\s+)?don'?t\s+have(\s+one|\s+it)?|no\s+order(\s+number)?|"
    r"没有|无|沒有|没有订单号?|不知道)\s*[.!。！]?\s*$",
    re.IGNORECASE,
)
# Openers that say a complaint is coming but not what it is about.
_GENERIC_COMPLAINT = re.compile(
    r"(i\s+)?(want|would like|wanna|need)\s+to\s+(make\s+a\s+|file\s+a\s+)?complain(t)?|i\s+have\s+a\s+complaint|"
    r"complaint|complain|我要投诉|我想投诉|我要投訴|投诉|投訴|我要|我想|一下",
    re.IGNORECASE,
)
_WORD_CHARS = re.compile(r"[^\W_]", re.UNICODE)


def normalise_order_number(value: Any) -> str | None:
    """The order number as the ticket stores it, ``"none"`` when the customer has none, None when unreadable."""
    if not isinstance(value, str):
        return None
    if value == NO_ORDER or _NO_ORDER_ANSWERS.match(value):
        return NO_ORDER
    match = _ORDER_NUMBER.search(value.replace(" ", ""))
    if match is None or len(match.group(0)) > MAX_ORDER_NUMBER_CHARS:
        return None
    return match.group(0)


def is_descriptive(text: Any) -> bool:
    """Whether a complaint text says what went wrong, not just "I want to complain"."""
    if not isinstance(text, str) or text.startswith("/"):
        return False
    remainder = _GENERIC_COMPLAINT.sub("", text)
    return len(_WORD_CHARS.findall(remainder)) >= MIN_DESCRIPTION_CHARS


class ValidateComplaintForm(FormValidationAction):
    """Keeps the complaint form asking until it has an order number (or "none") and a real description."""

    def name(self) -> str:
        """The form's validation action, by Rasa's naming convention."""
        return "validate_complaint_form"

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Accept an order number or "I have none"; anything else is asked again."""
        return {"order_number": normalise_order_number(slot_value)}

    def validate_complaint_description(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Accept a description that says what happened; a bare "I want to complain" is asked again."""
        return {"complaint_description": slot_value.strip() if is_descriptive(slot_value) else None}


class ActionSubmitComplaint(UsesKefu, Action):
    """Triage the complaint, open its ticket and tell the customer its number, priority and response time."""

    def name(self) -> str:
        """Name the rules call after the complaint form completes."""
        return "action_submit_complaint"

    @apologise_when_unavailable
    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Open the ticket and confirm it; the form's slots are cleared for the next complaint."""
        language = customer_language(tracker)
        order_number = tracker.get_slot("order_number")
        triage = load_triage(self.kefu)
        with self.kefu.uow() as uow:
            ticket = file_complaint(
                uow.session,
                triage,
                sender_id=tracker.sender_id,
                language=language,
                text=tracker.get_slot("complaint_description") or "",
                order_number=None if order_number in (None, NO_ORDER) else order_number,
            )
            uow.commit()
            number, priority = ticket.number, ticket.priority
            due_in_minutes = ((ticket.first_response_due_at or utcnow()) - ticket.created_at).total_seconds() / 60
        dispatcher.utter_message(
            response="utter_ticket_created",
            ticket_number=number,
            priority=priority_label(priority),
            response_time=duration_label(due_in_minutes, language),
        )
        return [
            SlotSet("ticket_number", number),
            SlotSet("order_number", None),
            SlotSet("complaint_description", None),
        ]
