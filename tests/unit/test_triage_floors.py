"""Danger floors: safety, fraud and legal threats get at least their configured priority, whatever the score."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from router.errors import InvalidInput
from router.triage.config import load_config
from router.triage.urgency import RiskFinding, UrgencyInputs, score_urgency

TRIAGE_DIR = Path(__file__).resolve().parents[2] / "data" / "triage"
CONFIG = load_config(TRIAGE_DIR).urgency


def calm(text: str, *risks: RiskFinding) -> UrgencyInputs:
    """A message from a calm standard customer in a mild category: the score alone gives P3 at most."""
    return UrgencyInputs(severity=0.3, negativity=0.0, text=text, risks=risks)


@pytest.mark.parametrize(
    "text",
    [
        "my kettle caught fire and burned my hand",
        "the heater is smoking",
        "got an electric shock from the lamp",
        "my son had an allergic reaction to the biscuits",
        "we all got food poisoning from the takeaway",
        "she is in hospital after using the cream",
        "电水壶着火了，手也烫伤了",
        "孩子吃了过敏，送医了",
        "热水器漏电，被电了一下",
    ],
)
def test_safety_is_p1_however_calm(text: str) -> None:
    urgency = score_urgency(calm(text), CONFIG)
    assert urgency.band.priority == 1
    floor = urgency.floors[0]
    assert floor.name == "safety" and floor.priority == 1 and floor.score_priority >= 3
    assert floor.cue_words["safety"], "the agent must see the words that fired the floor"


@pytest.mark.parametrize(
    "text",
    [
        "I did not authorise this payment",
        "someone hacked my account and placed orders",
        "there's a charge on my statement I don't recognise",
        "信用卡被盗刷了，不是我本人操作",
        "我的账号被盗了",
        # A payment made by a stranger, one the customer knows nothing of, or made without consent: the English twins
        # of 陌生人 and 不知道的转账, and Banking77's "used without my authorization".
        "there is a payment to a man I've never heard of, from somebody we don't know",
        "a withdrawal that I did not know about",
        "my card was used without authorisation",
    ],
)
def test_fraud_is_at_least_p2(text: str) -> None:
    urgency = score_urgency(calm(text), CONFIG)
    assert urgency.band.priority == 2 and [floor.name for floor in urgency.floors] == ["fraud"]
    assert urgency.floors[0].ongoing is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("my card was stolen and they are still charging it", "still charging"),
        ("someone hacked my account and keeps taking money", "keeps taking"),
        ("卡被盗刷了，刚又扣了一笔", "又扣了"),
        ("不是我本人操作的，现在还在扣钱", "还在扣"),
        # No payment on a card the customer cancelled or blocked is one they made, and this one is still going on.
        ("I blocked my card on Monday and the shop is still charging me", "still charging"),
        ("we keep being debited even after we closed the account", "keep being debited"),
        ("信用卡挂失了还在被扣钱", "还在被"),
    ],
)
def test_fraud_with_money_still_leaving_is_p1(text: str, words: str) -> None:
    urgency = score_urgency(calm(text), CONFIG)
    floor = urgency.floors[0]
    assert urgency.band.priority == 1 and floor.name == "fraud" and floor.priority == 1
    assert floor.ongoing == "money_still_leaving" and words in floor.ongoing_words


@pytest.mark.parametrize(
    "text",
    [
        "I'm reporting you to consumer protection",
        "my lawyer will be in touch",
        "I'm going to the press with this",
        "再不处理我就去12315投诉",
        "我要发微博曝光你们",
    ],
)
def test_legal_and_media_threats_are_at_least_p2(text: str) -> None:
    urgency = score_urgency(calm(text), CONFIG)
    assert urgency.band.priority == 2 and urgency.floors[0].name == "legal_threat"


def test_the_risk_model_alone_fires_a_floor_and_is_named_as_the_reason() -> None:
    finding = RiskFinding("fraud", 0.91, 0.3, ["payment", "recognise"])
    urgency = score_urgency(calm("there is a card payment on my account from a shop", finding), CONFIG)
    assert urgency.cues == [] and urgency.band.priority == 2
    assert urgency.floors[0].risk == finding and urgency.floors[0].cue_words == {}
    assert urgency.floors[0].to_dict()["risk"] == {
        "risk": "fraud",
        "probability": 0.91,
        "threshold": 0.3,
        "terms": ["payment", "recognise"],
    }


def test_the_most_urgent_floor_wins_and_every_floor_that_fired_is_kept() -> None:
    text = "my child is in hospital after the allergic reaction and I'm calling my lawyer"
    urgency = score_urgency(calm(text), CONFIG)
    assert urgency.band.priority == 1
    assert [floor.name for floor in urgency.floors] == ["safety", "legal_threat"]


def test_a_floor_never_lowers_a_priority_the_score_already_gave() -> None:
    furious_vip = UrgencyInputs(1.0, 1.0, "I'll see you in court", "vip", 5, 500.0)
    urgency = score_urgency(furious_vip, CONFIG)
    assert urgency.band.priority == 1 and urgency.floors[0].priority == 2 and urgency.floors[0].score_priority == 1


def test_ordinary_complaints_have_no_floor() -> None:
    for text in ["where is my parcel", "快递三天了还没到", "the blender motor burned out", "coffee tastes burnt"]:
        assert score_urgency(calm(text), CONFIG).floors == []


TEXTS = st.sampled_from(
    ["", "where is my parcel", "it caught fire", "卡被盗刷了又扣了", "找律师", "my card was stolen", "still charging"]
)


@given(TEXTS, TEXTS, st.floats(0, 1), st.floats(0, 1))
def test_priority_is_never_less_urgent_than_a_fired_floor_and_more_words_never_lower_it(
    text: str, extra: str, severity: float, negativity: float
) -> None:
    value = UrgencyInputs(severity, negativity, text)
    urgency = score_urgency(value, CONFIG)
    assert all(urgency.band.priority <= floor.priority for floor in urgency.floors)
    assert score_urgency(replace(value, text=f"{text} {extra}"), CONFIG).band.priority <= urgency.band.priority


def _with_floors(tmp_path: Path, floors: object) -> Path:
    shutil.copy(TRIAGE_DIR / "categories.yml", tmp_path / "categories.yml")
    raw = yaml.safe_load((TRIAGE_DIR / "urgency.yml").read_text(encoding="utf-8"))
    raw["floors"] = floors
    (tmp_path / "urgency.yml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("floors", "message"),
    [
        (["safety"], "floors must be a mapping"),
        ({"safety": "P1"}, "floor 'safety' must be a mapping"),
        ({"safety": {"priority": 0, "cues": ["safety"]}}, "floor 'safety' priority must be a priority 1..4"),
        ({"safety": {"priority": "P1", "cues": ["safety"]}}, "floor 'safety' priority must be a priority 1..4"),
        ({"safety": {"priority": 1, "cues": ["fire"]}}, "names cues ['fire'] that the cues section does not define"),
        ({"safety": {"priority": 1, "risk": "danger"}}, "risk must be one of ['safety', 'fraud', 'legal_threat']"),
        ({"safety": {"priority": 1}}, "needs cues or a risk, or it can never fire"),
        ({"safety": {"priority": 1, "cues": ["safety"], "level": 2}}, "unknown settings ['level']"),
        (
            {"fraud": {"priority": 2, "risk": "fraud", "ongoing": {"name": "x", "priority": 3, "patterns": ["a"]}}},
            "ongoing priority P3 must be at least as urgent as the floor's P2",
        ),
        (
            {"fraud": {"priority": 2, "risk": "fraud", "ongoing": {"name": "x", "priority": 1, "patterns": ["("]}}},
            "ongoing patterns has an invalid regular expression",
        ),
        (
            {"fraud": {"priority": 2, "risk": "fraud", "ongoing": {"name": "x", "priority": 1, "patterns": []}}},
            "ongoing patterns must be a non-empty list",
        ),
        ({"fraud": {"priority": 2, "risk": "fraud", "ongoing": ["still"]}}, "ongoing must be a mapping"),
        (
            {"safety": {"priority": 1, "risk": "safety", "category": "fire"}},
            "files messages under category 'fire', which categories.yml does not define",
        ),
        ({"safety": {"priority": 1, "risk": "safety", "category": ["a"]}}, "category must be a category name"),
    ],
)
def test_a_bad_floor_is_refused_with_an_error_that_says_what_to_fix(
    tmp_path: Path, floors: object, message: str
) -> None:
    with pytest.raises(InvalidInput, match=r"urgency\.yml") as raised:
        load_config(_with_floors(tmp_path, floors))
    assert message in str(raised.value)


def test_the_shipped_floors_are_the_ones_the_issue_asks_for() -> None:
    floors = {floor.name: floor for floor in CONFIG.floors}
    assert {name: floor.priority for name, floor in floors.items()} == {"safety": 1, "fraud": 2, "legal_threat": 2}
    assert floors["fraud"].ongoing is not None and floors["fraud"].ongoing.priority == 1
    assert {floor.risk for floor in floors.values()} == {"safety", "fraud", "legal_threat"}
    assert (floors["safety"].category, floors["fraud"].category) == ("product_safety", "fraud_security")
