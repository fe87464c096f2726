"""NLU fallback: ask the customer to rephrase once; the second miss in a row offers a human."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from router.triage.bad_input import bad_input_reason

FALLBACK_INTENT = "nlu_fallback"
OFFER_HANDOFF = "utter_offer_handoff"


def consecutive_fallbacks(tracker: Tracker) -> int:
    """How many of the customer's latest messages in a row the NLU could not understand."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") != FALLBACK_INTENT:
            break
        count += 1
    return count


class ActionNluFallback(Action):
    """Rephrase request on the first misunderstanding, handoff offer on the second in a row."""

    def name(self) -> str:
        """Name the fallback rules call."""
        return "action_nlu_fallback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[dict[str, Any]]:
        """Pick the polite answer; unreadable input (empty, emoji only, too long) is told so."""
        if consecutive_fallbacks(tracker) >= 2:
            return [FollowupAction(OFFER_HANDOFF)]  # as an action event, so a "yes" right after it connects a human
        if bad_input_reason((tracker.latest_message or {}).get("text")) is not None:
            dispatcher.utter_message(response="utter_bad_input")
        else:
            dispatcher.utter_message(response="utter_ask_rephrase")
        return []
