"""kefu's tracker store keeps Rasa's SQLTrackerStore rows and behaviour while reading and writing less per turn."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot import action_validation
from bot.tracker_store import KefuTrackerStore, event_from_dict

DOMAIN = Domain.from_dict({"intents": ["greet"], "slots": {"language": {"type": "text", "mappings": []}}})


class CollectingBroker(EventBroker):
    """Rasa's broker interface, keeping what was published."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        """Keep the event."""
        self.published.append(event)


def _turn(text: str, timestamp: float) -> list[Event]:
    return [
        UserUttered(text, {"name": "greet", "confidence": 0.9}, timestamp=timestamp),
        SlotSet("language", "zh", timestamp=timestamp + 0.1),
        BotUttered("你好", {"buttons": [{"title": "是", "payload": "/affirm"}]}, timestamp=timestamp + 0.2),
        ActionExecuted("action_listen", timestamp=timestamp + 0.3),
    ]


def _store(path: Path, broker: EventBroker | None = None) -> KefuTrackerStore:
    return KefuTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(path), event_broker=broker)


def test_endpoint_config_builds_kefu_store(tmp_path: Path) -> None:
    config = EndpointConfig(type="bot.tracker_store.KefuTrackerStore", dialect="sqlite", db=str(tmp_path / "t.db"))
    # Rasa silently falls back to an in-memory store (losing conversations on restart) if the class is not found.
    assert isinstance(create_tracker_store(config, DOMAIN), KefuTrackerStore)


def test_saves_only_new_events_and_publishes_them_once(tmp_path: Path) -> None:
    broker = CollectingBroker()
    store = _store(tmp_path / "t.db", broker)
    tracker = DialogueStateTracker.from_events("web:1", _turn("你好", 100.0), DOMAIN.slots)
    asyncio.run(store.save(tracker))
    tracker = asyncio.run(store.retrieve("web:1"))
    for event in _turn("在吗", 200.0):
        tracker.update(event)
    asyncio.run(store.save(tracker))

    assert [e["event"] for e in broker.published] == ["user", "slot", "bot", "action"] * 2
    assert {e["sender_id"] for e in broker.published} == {"web:1"}
    rasa_store = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))
    assert list(asyncio.run(rasa_store.retrieve("web:1")).events) == _turn("你好", 100.0) + _turn("在吗", 200.0)


def test_conversation_survives_a_new_store_and_reads_rasas_own_rows(tmp_path: Path) -> None:
    rasa_store = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))
    asyncio.run(rasa_store.save(DialogueStateTracker.from_events("web:2", _turn("hi", 1.0), DOMAIN.slots)))
    asyncio.run(
        _store(tmp_path / "t.db").save(DialogueStateTracker.from_events("web:3", _turn("嗨", 2.0), DOMAIN.slots))
    )

    restarted = _store(tmp_path / "t.db")
    assert list(asyncio.run(restarted.retrieve("web:2")).events) == _turn("hi", 1.0)
    tracker = asyncio.run(restarted.retrieve("web:3"))
    assert tracker.get_slot("language") == "zh"
    assert tracker.latest_message.text == "嗨"
    assert asyncio.run(restarted.retrieve("web:unknown")) is None


def test_retrieve_reads_only_the_latest_session_like_rasa(tmp_path: Path) -> None:
    events = [*_turn("old", 1.0), ActionExecuted("action_session_start", timestamp=5.0), SessionStarted(5.0)]
    events += _turn("new", 6.0)
    asyncio.run(_store(tmp_path / "t.db").save(DialogueStateTracker.from_events("web:4", events, DOMAIN.slots)))
    rasa_store = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))

    ours = asyncio.run(_store(tmp_path / "t.db").retrieve("web:4"))
    assert list(ours.events) == list(asyncio.run(rasa_store.retrieve("web:4")).events)
    full = asyncio.run(_store(tmp_path / "t.db").retrieve_full_tracker("web:4"))
    assert list(full.events) == events


@pytest.mark.parametrize("event", [*_turn("你好", 1.0), SessionStarted(2.0), ActionExecuted("utter_greet", 3.0)])
def test_event_from_dict_matches_rasa(event: Event) -> None:
    assert event_from_dict(event.as_dict()) == Event.from_parameters(event.as_dict())


@pytest.mark.parametrize(
    "response",
    [
        {"events": [{"event": "slot", "timestamp": None, "name": "x", "value": 1}], "responses": [{"text": "a"}]},
        {"events": [{"event": "slot", "name": "x"}], "responses": []},
        {"events": [{"name": "no event key"}], "responses": []},
        {"events": {}, "responses": "not a list"},
        {"events": [{"event": "no such event"}], "responses": []},
        {"events": [{"event": 3}], "responses": []},
        {"events": [{"event": "bot", "text": 5}], "responses": []},
        {"events": [{"event": "bot", "text": "hi"}, {"event": "active_loop", "name": None}], "responses": []},
        {"events": [{"event": "user", "text": "hi", "parse_data": {"entities": [{"entity": "x"}]}}]},
        {"events": [{"event": "reminder", "intent": "x", "date_time": "2026-11-23"}], "responses": [{}]},
        "not an object",
    ],
)
def test_action_responses_validated_as_rasa_does(response: dict[str, Any]) -> None:
    action_validation.install()
    action = RemoteAction("action_answer_faq", None)
    try:
        jsonschema.validate(response, RemoteAction.action_response_format_spec())
    except ValidationError as expected:
        with pytest.raises(ValidationError) as error:
            action._validate_action_result(response)
        assert error.value.message.startswith(expected.message + ". Failed to validate Action server response")
        assert list(error.value.absolute_path) == list(expected.absolute_path)
    else:
        assert action._validate_action_result(response)


def test_a_saved_conversation_is_served_from_memory_until_another_writer_adds_to_it(tmp_path: Path) -> None:
    store = _store(tmp_path / "t.db")
    saved = DialogueStateTracker.from_events("web:5", _turn("你好", 1.0), DOMAIN.slots)
    asyncio.run(store.save(saved))
    assert asyncio.run(store.retrieve("web:5")) is saved
    asyncio.run(store.save(saved))

    other = _store(tmp_path / "t.db")
    elsewhere = asyncio.run(other.retrieve("web:5"))
    for event in _turn("还在吗", 2.0):
        elsewhere.update(event)
    asyncio.run(other.save(elsewhere))

    fresh = asyncio.run(store.retrieve("web:5"))
    assert fresh is not saved
    assert list(fresh.events) == _turn("你好", 1.0) + _turn("还在吗", 2.0)


def test_a_turn_that_fails_before_saving_leaves_nothing_behind(tmp_path: Path) -> None:
    broker = CollectingBroker()
    store = _store(tmp_path / "t.db", broker)
    asyncio.run(store.save(DialogueStateTracker.from_events("web:6", _turn("hi", 1.0), DOMAIN.slots)))
    failed = asyncio.run(store.retrieve("web:6"))
    failed.update(UserUttered("never answered", {"name": "greet", "confidence": 0.9}, timestamp=2.0))
    # The turn raised here; its tracker is never saved.

    retried = asyncio.run(store.retrieve("web:6"))
    assert list(retried.events) == _turn("hi", 1.0)
    for event in _turn("hi again", 3.0):
        retried.update(event)
    asyncio.run(store.save(retried))

    rasa_store = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))
    assert list(asyncio.run(rasa_store.retrieve("web:6")).events) == _turn("hi", 1.0) + _turn("hi again", 3.0)
    assert [e.get("text") for e in broker.published if e["event"] == "user"] == ["hi", "hi again"]


def test_a_new_session_or_a_new_model_reads_the_conversation_from_the_table(tmp_path: Path) -> None:
    store = _store(tmp_path / "t.db")
    tracker = DialogueStateTracker.from_events("web:7", _turn("old", 1.0), DOMAIN.slots)
    asyncio.run(store.save(tracker))
    for event in [ActionExecuted("action_session_start", timestamp=5.0), SessionStarted(5.0), *_turn("new", 6.0)]:
        tracker.update(event)
    asyncio.run(store.save(tracker))
    latest = asyncio.run(store.retrieve("web:7"))
    assert latest is not tracker
    rasa_store = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))
    assert list(latest.events) == list(asyncio.run(rasa_store.retrieve("web:7")).events)
    assert latest.latest_message.text == "new" and len(latest.events) < len(tracker.events)

    asyncio.run(store.save(latest))
    store.domain = Domain.from_dict({"intents": ["greet"], "slots": {"language": {"type": "text", "mappings": []}}})
    assert asyncio.run(store.retrieve("web:7")) is not latest


PII_TURNS = {
    "zh": (
        "我的电话13812345678，卡号4111 1111 1111 1111，寄到北京市朝阳区建国路88号",
        "好的，我们会发到 li.lei@example.com 并回电 13812345678",
        ("13812345678", "4111 1111 1111 1111", "建国路88号", "li.lei@example.com"),
    ),
    "en": (
        "call me on +44 20 7946 0958, passport no. 123456789, I live at 221B Baker Street",
        "We will write to jane@example.org about card 5555 5555 5555 4444",
        ("+44 20 7946 0958", "123456789", "221B Baker Street", "jane@example.org", "5555 5555 5555 4444"),
    ),
}


@pytest.mark.parametrize("language", PII_TURNS)
def test_texts_entities_and_slots_reach_the_table_redacted_while_the_turn_keeps_them(
    tmp_path: Path, language: str
) -> None:
    said, answered, personal = PII_TURNS[language]
    domain = Domain.from_dict({"intents": ["inform"], "slots": {"phone": {"type": "text", "mappings": []}}})
    store = KefuTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "t.db"))
    entity = {"entity": "phone", "value": personal[0], "start": 0, "end": 5, "extractor": "RegexEntityExtractor"}
    events = [
        UserUttered(said, {"name": "inform", "confidence": 0.9}, [entity], timestamp=1.0),
        SlotSet("phone", personal[0], timestamp=1.1),
        BotUttered(answered, {"buttons": [{"title": said, "payload": "/inform"}]}, timestamp=1.2),
        ActionExecuted("action_listen", timestamp=1.3),
    ]
    tracker = DialogueStateTracker.from_events("web:pii", events, domain.slots)
    asyncio.run(store.save(tracker))

    with sqlite3.connect(tmp_path / "t.db") as table:
        rows = table.execute("SELECT type_name, intent_name, action_name, data FROM events").fetchall()
    stored = " ".join(row[3] for row in rows)
    assert not [value for value in personal if value in stored], stored
    assert [row[:3] for row in rows] == [
        ("user", "inform", None),
        ("slot", None, "phone"),
        ("bot", None, None),
        ("action", None, "action_listen"),
    ]
    assert asyncio.run(store.retrieve("web:pii")).latest_message.text == said, "the live tracker keeps the text"
    restarted = asyncio.run(
        KefuTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "t.db")).retrieve("web:pii")
    )
    assert restarted.get_slot("phone") == "[phone]"
    assert restarted.latest_message.entities[0]["value"] == "[phone]"
    assert "[phone]" in restarted.latest_message.text
    assert restarted.latest_message.intent["name"] == "inform"


def test_what_the_customer_gave_away_is_redacted_when_the_bot_repeats_it_in_a_later_turn(tmp_path: Path) -> None:
    domain = Domain.from_dict({"intents": ["inform"], "slots": {"order_number": {"type": "text", "mappings": []}}})
    store = KefuTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "t.db"))
    said = [UserUttered("我的护照E73920418", {"name": "inform", "confidence": 0.9}, timestamp=1.0)]
    asyncio.run(store.save(DialogueStateTracker.from_events("web:echo", said, domain.slots)))
    tracker = asyncio.run(store.retrieve("web:echo"))
    for event in [
        SlotSet("order_number", "73920418", 2.0),
        BotUttered("请问是订单 73920418 的问题吗？", timestamp=2.1),
    ]:
        tracker.update(event)
    asyncio.run(store.save(tracker))

    with sqlite3.connect(tmp_path / "t.db") as table:
        stored = [json.loads(data) for (data,) in table.execute("SELECT data FROM events ORDER BY id")]
    assert [event.get("text") or event.get("value") for event in stored] == [
        "我的护照[passport]",
        "[passport]",
        "请问是订单 [passport] 的问题吗？",
    ]
