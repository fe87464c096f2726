"""Complaint intake: read what the customer answers the form, then triage the complaint and open the ticket."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint_answers import (
    NO_ORDER,
    ReadReply,
    Reply,
    description_besides,
    order_numbers_said,
    read_confirmation_reply,
    read_description_reply,
    read_order_reply,
)
from actions.runtime import UsesKefu, apologise_when_unavailable, customer_language, latest_text
from actions.wording import duration_label, priority_label
from router.crm.redaction import known_pii
from router.routing.customer_tickets import file_complaint, load_triage

FORM_NAME = "complaint_form"
# The order number is optional: asked once more after a reply without one, then the complaint goes on without it.
MAX_ORDER_NUMBER_MISSES = 2
# An order number from an earlier turn waits in EARLIER_ORDER_SLOT until the customer answers CONFIRMATION_SLOT's
# question ("is this about order 12345?"): the status question it came from may have been about another order.
EARLIER_ORDER_SLOT = "order_number_candidate"
CONFIRMATION_SLOT = "order_number_confirmation"
# Everything the form remembers; cleared when a complaint is filed, dropped or handed to a person.
FORM_SLOTS = (
    "order_number",
    "complaint_description",
    "order_number_misses",
    "complaint_cancelled",
    EARLIER_ORDER_SLOT,
    CONFIRMATION_SLOT,
)


def clear_form_slots() -> list[EventType]:
    """Events that forget the complaint in progress, so the next one starts afresh."""
    return [SlotSet(slot, None) for slot in FORM_SLOTS]


def _latest_intent(tracker: Tracker) -> str | None:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name")


def _latest_order_number(tracker: Tracker) -> str | None:
    return next(iter(order_numbers_said(tracker.latest_message or {})), None)


def _asks_a_question(tracker: Tracker, requested_slot: str) -> bool:
    text, intent = latest_text(tracker), _latest_intent(tracker)
    if requested_slot == CONFIRMATION_SLOT:
        earlier = str(tracker.get_slot(EARLIER_ORDER_SLOT))
        return read_confirmation_reply(text, intent, _latest_order_number(tracker), earlier).kind is Reply.question
    if requested_slot == "order_number":
        return read_order_reply(text, intent, _latest_order_number(tracker)).kind is Reply.question
    return read_description_reply(text, intent).kind is Reply.question


def _cancelled() -> dict[str, Any]:
    # Ending the form with the flag set lets the "drops the complaint" rule answer instead of filing it.
    return {
        "complaint_cancelled": True,
        "requested_slot": None,
        "order_number": None,
        "complaint_description": None,
        EARLIER_ORDER_SLOT: None,
    }


class ValidateComplaintForm(FormValidationAction):
    """Reads each reply to the complaint form: an answer fills its slot, a question is let through, "cancel" ends it."""

    def name(self) -> str:
        """The form's validation action, by Rasa's naming convention."""
        return "validate_complaint_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        """Validate as usual, but hand a question back to the rules (FAQ, status); the form asks again after it."""
        requested = tracker.get_slot("requested_slot")
        if requested in tracker.slots_to_validate() and _asks_a_question(tracker, requested):
            return [SlotSet(requested, None), ActionExecutionRejected(FORM_NAME)]
        return await super().run(dispatcher, tracker, domain)

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        """Ask "is this about order N?" only while an earlier order number waits; nothing more once dropped."""
        if tracker.get_slot("complaint_cancelled"):
            return []
        if tracker.get_slot(EARLIER_ORDER_SLOT):
            return domain_slots
        return [slot for slot in domain_slots if slot != CONFIRMATION_SLOT]

    def validate_order_number(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """An order number or "none" fills the slot; a description given instead is kept and the number asked again."""
        text = latest_text(tracker)
        if slot_value != text and str(slot_value) in known_pii(text):
            # The slot mapping took the digits of a passport or ID number for the order: read the reply instead.
            slot_value = text
        if slot_value != text:
            entity = _latest_order_number(tracker)
            if entity != str(slot_value):
                # Left from an earlier turn ("where is order 12345?", then "I want to complain"): ask, don't assume.
                return {"order_number": None, EARLIER_ORDER_SLOT: str(slot_value), "requested_slot": CONFIRMATION_SLOT}
            reply = ReadReply(Reply.order_number, entity)
            return {"order_number": reply.order_number, **self._description_alongside(reply, text, tracker)}
        reply = read_order_reply(text, _latest_intent(tracker), _latest_order_number(tracker))
        return self._order_number_answer(reply, text, dispatcher, tracker)

    def validate_order_number_confirmation(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Yes takes the earlier order number, no asks for the number, anything else is read as the number's answer."""
        # Asked only while the earlier number waits (required_slots), so EARLIER_ORDER_SLOT is set here.
        earlier = str(tracker.get_slot(EARLIER_ORDER_SLOT))
        settled: dict[str, Any] = {CONFIRMATION_SLOT: None, EARLIER_ORDER_SLOT: None}
        text = latest_text(tracker)
        reply = read_confirmation_reply(text, _latest_intent(tracker), _latest_order_number(tracker), earlier)
        if reply.kind is Reply.not_this_order:
            return {**settled, "order_number": None}  # the form goes on to "which order is it?"
        if reply.kind is Reply.unreadable and not tracker.get_slot("order_number_misses"):
            # "😀" or "嗯？" says nothing about the order: the form asks the same question once more.
            return {CONFIRMATION_SLOT: None, "order_number_misses": 1}
        return {**settled, **self._order_number_answer(reply, text, dispatcher, tracker)}

    def _order_number_answer(
        self, reply: ReadReply, text: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        if reply.kind is Reply.cancel:
            return _cancelled()
        if reply.kind in (Reply.order_number, Reply.no_order):
            return {"order_number": reply.order_number, **self._description_alongside(reply, text, tracker)}
        return self._missed_order_number(reply, text, dispatcher, tracker)

    def _description_alongside(self, reply: ReadReply, text: str, tracker: Tracker) -> dict[str, Any]:
        """ "订单12345，东西一直没发货" answers both questions at once."""
        if tracker.get_slot("complaint_description") or not reply.order_number or reply.order_number == NO_ORDER:
            return {}
        description = description_besides(text, reply.order_number)
        return {"complaint_description": description} if description else {}

    def _missed_order_number(
        self, reply: ReadReply, text: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        misses = int(tracker.get_slot("order_number_misses") or 0) + 1
        slots: dict[str, Any] = {"order_number_misses": misses, "order_number": None}
        if reply.kind is Reply.description:
            earlier = tracker.get_slot("complaint_description")
            slots["complaint_description"] = f"{earlier}\n{text.strip()}" if earlier else text.strip()
        if misses >= MAX_ORDER_NUMBER_MISSES:
            dispatcher.utter_message(response="utter_filing_without_order_number")
            slots["order_number"] = NO_ORDER
        elif reply.kind is Reply.description:
            dispatcher.utter_message(response="utter_description_noted")
        else:
            dispatcher.utter_message(response="utter_no_order_number_found")
        return slots

    def validate_complaint_description(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A description that says what happened fills the slot; a bare "I want to complain" is asked again."""
        if not isinstance(slot_value, str):
            return {"complaint_description": None}
        reply = read_description_reply(slot_value, _latest_intent(tracker))
        if reply.kind is Reply.cancel:
            return _cancelled()
        if reply.kind is not Reply.description:
            return {"complaint_description": None}
        return {"complaint_description": slot_value.strip()}


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
        filed = file_complaint(
            self.kefu.uow(),
            triage,
            sender_id=tracker.sender_id,
            language=language,
            text=tracker.get_slot("complaint_description") or "",
            order_number=None if order_number in (None, NO_ORDER) else order_number,
        )
        dispatcher.utter_message(
            response="utter_ticket_created",
            ticket_number=filed.number,
            priority=priority_label(filed.priority),
            response_time=duration_label(filed.first_response_minutes, language),
        )
        return [SlotSet("ticket_number", filed.number), *clear_form_slots()]


class ActionCancelComplaint(Action):
    """The customer dropped the complaint: say nothing was filed and forget what the form collected."""

    def name(self) -> str:
        """Name the "drops the complaint" rule calls."""
        return "action_cancel_complaint"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        """Confirm politely that no ticket was opened."""
        dispatcher.utter_message(response="utter_complaint_cancelled")
        return clear_form_slots()
