"""Labels become training examples; the export writes Rasa YAML and the triage CSV the trainers read."""

from __future__ import annotations

import csv

import pytest
import yaml
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.interactions import Turn, record_turns
from router.crm.models import Channel, Customer, Speaker, Ticket, TicketEvent, TicketEventKind, TrainingExample
from router.errors import InvalidInput, NotFound
from router.training.export import export_training_data
from router.training.labels import Response, correct_ticket_category, define_intent, known_intents, label_turns
from router.training.nlu_yaml import read_nlu_file


def _turn_ids(kefu: Kefu, texts: list[str], speaker: Speaker = Speaker.customer) -> list[int]:
    with kefu.uow() as uow:
        turns = [
            Turn(f"{speaker.value}{n}", f"web:{n}", speaker, text, intent="nlu_fallback")
            for n, text in enumerate(texts)
        ]
        ids = [interaction.id for interaction in record_turns(uow.session, turns)]
        uow.commit()
    return ids


def test_new_intent_with_responses_is_exported_as_nlu_domain_and_rule(kefu_any_db: Kefu) -> None:
    project, data = kefu_any_db.settings.project_dir, kefu_any_db.settings.var_dir / "data"
    ids = _turn_ids(kefu_any_db, ["how do i redeem points", "points\nexpiry?", "what's the weather"])
    with kefu_any_db.uow() as uow:
        define_intent(uow.session, "ask_points", [Response("en", "Points are redeemed at checkout."),
                                                  Response("zh", "积分在结账时抵扣。")], project, None)  # fmt: skip
        label_turns(uow.session, ids[:2], "ask_points", project, None)
        label_turns(uow.session, ids[2:], "out_of_scope", project, None)
        uow.commit()
        summary = export_training_data(uow.session, data, project)

    examples, _ = read_nlu_file(data / "reviewed" / "nlu.yml")
    assert {(e.text, e.intent) for e in examples} == {
        ("how do i redeem points", "ask_points"),
        ("points expiry?", "ask_points"),
        ("what's the weather", "out_of_scope"),
    }
    domain = yaml.safe_load((data / "reviewed" / "domain.yml").read_text(encoding="utf-8"))
    assert "ask_points" in domain["intents"]
    english, chinese = domain["responses"]["utter_ask_points"]
    assert english["condition"][0]["value"] == "en" and english["text"] == "Points are redeemed at checkout."
    assert chinese == {"text": "积分在结账时抵扣。"}
    rules = yaml.safe_load((data / "reviewed" / "rules.yml").read_text(encoding="utf-8"))["rules"]
    assert rules[0]["steps"] == [{"intent": "ask_points"}, {"action": "utter_ask_points"}]
    assert summary.intent_examples == 3 and summary.new_intents == 1


def test_relabelling_a_turn_replaces_its_label(kefu: Kefu) -> None:
    project = kefu.settings.project_dir
    [turn_id] = _turn_ids(kefu, ["hiya"])
    with kefu.uow() as uow:
        label_turns(uow.session, [turn_id], "goodbye", project, None)
        label_turns(uow.session, [turn_id], "greet", project, None)
        uow.commit()
        labels = uow.session.execute(select(TrainingExample.label)).scalars().all()
    assert labels == ["greet"]


@pytest.mark.parametrize(
    ("name", "responses", "message"),
    [
        ("Bad Name!", [Response("en", "x")], "lower-case"),
        ("greet", [Response("en", "x")], "already exists"),
        ("ask_new", [], "at least one response"),
        ("ask_new", [Response("en", "   ")], "at least one response"),
        ("ask_new", [Response("fr", "bonjour")], "zh or en"),
        ("ask_new", [Response("en", "x" * 5000)], "at most"),
    ],
)
def test_bad_new_intents_are_refused(kefu: Kefu, name: str, responses: list[Response], message: str) -> None:
    with kefu.uow() as uow, pytest.raises(InvalidInput, match=message):
        define_intent(uow.session, name, responses, kefu.settings.project_dir, None)


def test_bad_labels_are_refused(kefu: Kefu) -> None:
    project = kefu.settings.project_dir
    [customer_turn] = _turn_ids(kefu, ["hello"])
    [agent_turn] = _turn_ids(kefu, ["agent says hi"], Speaker.agent)
    with kefu.uow() as uow:
        with pytest.raises(InvalidInput, match="unknown intent"):
            label_turns(uow.session, [customer_turn], "no_such_intent", project, None)
        with pytest.raises(InvalidInput, match="unknown intent"):
            label_turns(uow.session, [customer_turn], "nlu_fallback", project, None)
        with pytest.raises(InvalidInput, match="at least one"):
            label_turns(uow.session, [], "greet", project, None)
        with pytest.raises(NotFound):
            label_turns(uow.session, [agent_turn], "greet", project, None)
        with pytest.raises(NotFound):
            label_turns(uow.session, [999999], "greet", project, None)
    assert "greet" in known_intents(uow.session, project)


def test_category_correction_fixes_the_ticket_and_feeds_the_triage_csv(kefu_any_db: Kefu) -> None:
    settings = kefu_any_db.settings
    with kefu_any_db.uow() as uow:
        ticket = Ticket(
            customer=Customer(display_name="c"), channel=Channel.web, subject="收到的手机屏幕碎了",
            description="收到的手机屏幕碎了\n盒子也是破的", category="delivery", needs_review=True,
        )  # fmt: skip
        uow.session.add(ticket)
        uow.session.flush()
        correct_ticket_category(uow.session, ticket.id, "product_quality", settings.data_dir, None)
        with pytest.raises(InvalidInput, match="unknown complaint category"):
            correct_ticket_category(uow.session, ticket.id, "weather", settings.data_dir, None)
        with pytest.raises(NotFound):
            correct_ticket_category(uow.session, 424242, "other", settings.data_dir, None)
        uow.commit()
        export_training_data(uow.session, settings.var_dir / "data", settings.project_dir)
        event = uow.session.execute(select(TicketEvent)).scalar_one()
        assert ticket.category == "product_quality" and not ticket.needs_review
        assert event.kind is TicketEventKind.category_corrected
        assert event.data == {"from": "delivery", "to": "product_quality"}
    with (settings.var_dir / "data" / "triage" / "reviewed.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # The description the classifier read, not the subject (its first line) repeated in front of it.
    assert rows == [{"text": "收到的手机屏幕碎了\n盒子也是破的", "category": "product_quality"}]
