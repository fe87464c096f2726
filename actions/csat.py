"""CSAT: store the rating (and comment) a customer gives once their ticket is resolved."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.runtime import UsesKefu, apologise_when_unavailable, latest_text
from actions.ticketing import rated_ticket_id
from router.crm.csat import record_csat
from router.errors import InvalidInput

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
        dispatcher.utter_message(response="utter_csat_thanks")
        return [SlotSet("csat_score", str(rating.score)), SlotSet("csat_comment", comment or None)]
