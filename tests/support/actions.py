"""Running rasa-sdk actions as the action server does: trackers as Rasa sends them, dispatcher, returned events."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.complaint import ActionSubmitComplaint
from router.bootstrap import Kefu
from router.crm.models import Ticket


def user_event(text: str, intent: str, confidence: float = 0.9, entities: list[dict] | None = None) -> dict[str, Any]:
    """A user event as the tracker the action server receives carries it."""
    parse_data = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": entities or []}
    return {"event": "user", "text": text, "parse_data": parse_data}


def make_tracker(
    events: list[dict[str, Any]], slots: dict[str, Any] | None = None, sender_id: str = "web:unit", **extra: Any
) -> Tracker:
    """A tracker whose latest message is the last user event, as Rasa sends it to the action server."""
    latest = next((event["parse_data"] for event in reversed(events) if event["event"] == "user"), {})
    return Tracker(
        sender_id=sender_id,
        slots={"language": "zh", **(slots or {})},
        latest_message=latest,
        events=events,
        paused=False,
        followup_action=None,
        active_loop=extra.get("active_loop", {}),
        latest_action_name="action_listen",
    )


def run(action: Any, tracker: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run a sync action as the action server would: the events it returns and the messages it sent."""
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, tracker, {})
    return events, dispatcher.messages


# The rating question, as the rules run it before a rating is expected.
ASKED = {"event": "action", "name": "utter_ask_csat"}


def tickets(kefu: Kefu) -> list[Ticket]:
    """Every ticket, oldest first, detached so its attributes stay readable."""
    with kefu.uow() as uow:
        rows = list(uow.session.execute(select(Ticket).order_by(Ticket.id)).scalars())
        uow.session.expunge_all()
        return rows


def submit(kefu: Kefu, sender_id: str, description: str, order_number: str | None, language: str = "zh"):
    tracker = make_tracker(
        [user_event(description, "complain")],
        slots={"language": language, "order_number": order_number, "complaint_description": description},
        sender_id=sender_id,
    )
    return run(ActionSubmitComplaint(kefu), tracker)
