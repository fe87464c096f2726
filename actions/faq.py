"""FAQ: answer from the CRM's FAQ table by similarity, or say so and offer a human."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.fallback import OFFER_HANDOFF
from actions.runtime import UsesKefu, apologise_when_unavailable, customer_language, latest_text
from router.crm.faq import answer_question


class ActionAnswerFaq(UsesKefu, Action):
    """Answer a question with the most similar FAQ entry, or admit uncertainty and offer a human."""

    def name(self) -> str:
        """Name the FAQ rules call."""
        return "action_answer_faq"

    @apologise_when_unavailable
    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """The FAQ answer as text (admins edit it in the CRM), else ``utter_faq_not_sure`` then the handoff offer."""
        # Only reads: on SQLite a read-only unit of work never queues behind the turn log's writes.
        with self.kefu.reader() as uow:
            match = answer_question(
                uow.session,
                latest_text(tracker),
                customer_language(tracker),
                self.kefu.settings.faq_similarity_threshold,
            )
        if match is None and (tracker.active_loop or {}).get("name"):
            # Mid-complaint the agent who takes the ticket answers it too; a handoff offer would derail the form.
            dispatcher.utter_message(response="utter_faq_not_sure_in_form")
            return []
        if match is None:
            dispatcher.utter_message(response="utter_faq_not_sure")
            return [FollowupAction(OFFER_HANDOFF)]  # an action event, so the handoff rules see the offer
        dispatcher.utter_message(text=match.answer)
        return []
