"""CSAT: store the rating (and comment) a customer gives once their ticket is resolved."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.runtime import UsesKefu, apologise_when_unavailable, latest_text
from actions.ticketing import comment_on_latest_rating, rated_ticket_id
from router.crm.csat import record_csat
from router.errors import InvalidInput

# A score this low without a word of why gets one question: what could we have done better?
LOW_SCORE = 3
_NO_COMMENT = re.compile(
    r"^\s*(no|nope|nothing|skip|no comment|n/?a|没有|没了|不用了|算了|跳过|无|没什么)\s*[.!。！]?\s*$", re.IGNORECASE
)
# What is left of "5分", "4 stars!" or "五星" once the score is taken out is not a comment.
_SCORE_ONLY = re.compile(
    r"^[\s\d一二两三四五１２３４５.,!?。，！？/]*(分|星|颗星|stars?|points?|out of 5|/5)?[\s.!。！]*$", re.IGNORECASE
)


def comment_of(text: str) -> str:
    """The comment in a rating message: empty when the message is only the score."""
    return "" if _SCORE_ONLY.match(text) else text.strip()


class ActionRecordCsat(UsesKefu, Action):
    """Store a 1–5 rating with its optional comment and thank the customer."""

    def name(self) -> str:
        """Name the rating rule calls."""
        return "action_record_csat"

    @apologise_when_unavailable
    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Record the score from the rating entity/slot (or the text); ask again when there is none."""
        text = latest_text(tracker)
        score = next(tracker.get_latest_entity_values("rating"), None) or tracker.get_slot("csat_score") or text
        comment = comment_of(text)
        try:
            with self.kefu.uow() as uow:
                ticket_id = rated_ticket_id(
                    uow.session, sender_id=tracker.sender_id, ticket_number=tracker.get_slot("ticket_number")
                )
                rating = record_csat(
                    uow.session, sender_id=tracker.sender_id, score=score, comment=comment, ticket_id=ticket_id
                )
                uow.commit()
        except InvalidInput:
            dispatcher.utter_message(response="utter_ask_csat")
            return [SlotSet("csat_score", None)]
        events = [SlotSet("csat_score", str(rating.score)), SlotSet("csat_comment", comment or None)]
        if rating.score <= LOW_SCORE and not comment:
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
            with self.kefu.uow() as uow:
                comment_on_latest_rating(uow.session, sender_id=tracker.sender_id, comment=comment)
                uow.commit()
            dispatcher.utter_message(response="utter_csat_comment_thanks")
        else:
            dispatcher.utter_message(response="utter_csat_thanks")
        return [SlotSet("csat_comment_wanted", None)]
