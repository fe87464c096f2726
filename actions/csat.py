"""CSAT: store the rating (and comment) a customer gives once their ticket is resolved."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint_answers import is_question
from actions.runtime import UsesKefu, apologise_when_unavailable, latest_text
from router.errors import InvalidInput
from router.routing.customer_tickets import comment_on_latest_rating, rate

# A score this low without a word of why gets one question: what could we have done better?
LOW_SCORE = 3
_NO_COMMENT = re.compile(
    r"^\s*(no|nope|nothing|skip|no comment|n/?a|没有|没了|不用了|算了|跳过|无|没什么)\s*[.!。！]?\s*$", re.IGNORECASE
)
# What is left of "5分", "4 stars!" or "五星" once the score is taken out is not a comment.
_SCORE_ONLY = re.compile(
    r"^[\s\d一二两三四五１２３４５.,!?。，！？/]*(分|星|颗星|stars?|points?|out of 5|/5)?[\s.!。！]*$", re.IGNORECASE
)

# Naming the act ("我要投诉", "I want to complain") asks for a new complaint; "your agent was rude" is the comment.
_NEW_COMPLAINT = re.compile(r"投诉|投訴|complain", re.IGNORECASE)
# Comments on a low rating talk about agents ("the agent was slow"), which the NLU reads as asking for one: only a
# request worded as such ("转人工", "talk to a human", "agent please") hands off instead of being the comment.
_HANDOFF_REQUEST = re.compile(
    r"转人工|人工客服|人工服务|^\s*人工|[找要换转]人工|真人|转接|[找叫要](你们)?的?(主管|经理|领导)|"
    r"(talk|speak|chat)\s+(to|with)|connect\s+me|transfer\s+me|put\s+me\s+through|get\s+me\s+(an?|the|some)|"
    r"\b(human|real\s+person|operator|representative)\b|\b(agent|person|someone)\s*,?\s*(please|pls|now)\b|"
    r"^\W*(an?\s+)?agent\W*$",
    re.IGNORECASE,
)
# "退款怎么这么久" or "how come it took two weeks?" is worded as a question but says what went wrong: the comment.
_RHETORICAL = re.compile(
    r"(怎么|为什么|为啥|凭什么|咋)(会|能)?(这么|那么|这样|那样)|\bhow\s+come\b|\bwhy\b.*\bso\b", re.IGNORECASE
)
COMMENT_FORM = "csat_comment_form"
ASK_RATING = "utter_ask_csat"
RECORD_RATING = "action_record_csat"


def comment_of(text: str) -> str:
    """The comment in a rating message: empty when the message is only the score."""
    return "" if _SCORE_ONLY.match(text) else text.strip()


def asks_for_something_else(text: str, intent: str | None) -> bool:
    """Whether the reply to "what could we have done better?" wants a human, a status, an FAQ or a new complaint."""
    if intent == "request_human":
        return bool(_HANDOFF_REQUEST.search(text))
    if intent == "check_status":
        return is_question(text)
    if intent == "ask_faq":
        # "怎么退货？" wants the answer; "the refund took too long" or "退款怎么这么久" says what went wrong.
        return is_question(text) and not _RHETORICAL.search(text)
    return intent == "complain" and bool(_NEW_COMPLAINT.search(text))


class ValidateCsatCommentForm(FormValidationAction):
    """Reads the answer to "what could we have done better?": the comment, or a request the rules should serve."""

    def name(self) -> str:
        """The comment form's validation action, by Rasa's naming convention."""
        return "validate_csat_comment_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        """A request for a human, a status or FAQ question or a new complaint ends the question, no comment stored."""
        intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
        text = latest_text(tracker)
        if "csat_comment" not in tracker.slots_to_validate() or not asks_for_something_else(text, intent):
            return await super().run(dispatcher, tracker, domain)
        # The rules then deactivate this form and hand off, answer the status or the FAQ, or start the complaint form.
        events = [SlotSet("csat_comment", None), SlotSet("csat_comment_wanted", None)]
        if intent == "complain":
            # The complaint's own mapping reads it only outside a form, so pass the words on as its description.
            events.append(SlotSet("complaint_description", text))
        return [*events, ActionExecutionRejected(COMMENT_FORM)]

    def validate_csat_comment(
        self, slot_value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Anything else is the comment, as the customer wrote it."""
        return {"csat_comment": slot_value}


def rating_awaited(tracker: Tracker) -> bool:
    """Whether the bot asked for a rating not given since: "I have 3 questions" out of the blue is no rating."""
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") in (ASK_RATING, RECORD_RATING):
            return event["name"] == ASK_RATING
    return False


class ActionRecordCsat(UsesKefu, Action):
    """Store a 1–5 rating with its optional comment and thank the customer."""

    def name(self) -> str:
        """Name the rating rule calls."""
        return RECORD_RATING

    @apologise_when_unavailable
    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Record the score from this message's rating entity (or its text); ask again when there is none."""
        if not rating_awaited(tracker):
            dispatcher.utter_message(response="utter_ask_rephrase")
            return [SlotSet("csat_score", None)]
        text = latest_text(tracker)
        # Not the csat_score slot: it may still hold last month's rating.
        score = next(tracker.get_latest_entity_values("rating"), None) or text
        comment = comment_of(text)
        try:
            rated = rate(
                self.kefu.uow(),
                sender_id=tracker.sender_id,
                score=score,
                comment=comment,
                ticket_number=tracker.get_slot("ticket_number"),
            )
        except InvalidInput:
            # As an action event, so the rating rules and rating_awaited see the question asked again.
            return [SlotSet("csat_score", None), FollowupAction(ASK_RATING)]
        events = [SlotSet("csat_score", str(rated)), SlotSet("csat_comment", comment or None)]
        if rated <= LOW_SCORE and not comment:
            return [*events, SlotSet("csat_comment_wanted", True)]  # the comment form asks what went wrong
        dispatcher.utter_message(response="utter_csat_thanks")
        return events


class ActionStoreCsatComment(UsesKefu, Action):
    """Store what the customer answered to "what could we have done better?" with their low rating."""

    def name(self) -> str:
        """Name the rule calls once the comment form has the answer."""
        return "action_store_csat_comment"

    @apologise_when_unavailable
    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Add the comment to the rating unless the customer declined, then thank them."""
        comment = str(tracker.get_slot("csat_comment") or "")
        if comment.strip() and not _NO_COMMENT.match(comment):
            comment_on_latest_rating(self.kefu.uow(), sender_id=tracker.sender_id, comment=comment)
            dispatcher.utter_message(response="utter_csat_comment_thanks")
        else:
            dispatcher.utter_message(response="utter_csat_thanks")
        return [SlotSet("csat_comment_wanted", None)]
