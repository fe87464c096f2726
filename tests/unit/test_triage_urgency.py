"""The urgency score is bounded, the weighted sum of its factors, monotonic in every factor, and maps to the
configured SLAs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.errors import InvalidInput
from router.triage.config import load_config, load_urgency
from router.triage.urgency import UrgencyInputs, score_urgency

TRIAGE_DIR = Path(__file__).resolve().parents[2] / "data" / "triage"
CONFIG = load_config(TRIAGE_DIR)
TIERS = ["standard", "gold", "vip"]
CUE_TEXTS = [
    *["", "快递到哪了", "马上处理", "refund now or I call my lawyer"],
    *["卡被盗刷了，我要去12315投诉", "it caught fire"],
]

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
inputs = st.builds(
    UrgencyInputs,
    severity=unit,
    negativity=unit,
    text=st.sampled_from(CUE_TEXTS),
    customer_tier=st.sampled_from(TIERS),
    repeat_contacts_7d=st.integers(min_value=0, max_value=50),
    waited_minutes=st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False),
)


def score(value: UrgencyInputs) -> float:
    return score_urgency(value, CONFIG.urgency).score


@given(inputs)
def test_score_is_bounded_and_factors_add_up(value: UrgencyInputs) -> None:
    result = score_urgency(value, CONFIG.urgency)
    assert 0.0 <= result.score <= 100.0
    assert set(result.factors) == {"severity", "sentiment", "cues", "tier", "repeats", "waiting"}
    assert result.score == pytest.approx(sum(result.factors.values()), abs=0.01)


@given(inputs)
def test_each_factor_is_its_weight_times_its_capped_level(value: UrgencyInputs) -> None:
    urgency = CONFIG.urgency
    levels = {
        "severity": value.severity,
        "sentiment": value.negativity,
        "tier": urgency.tiers[value.customer_tier],
        "repeats": min(1.0, value.repeat_contacts_7d / urgency.repeats_for_full),
        "waiting": min(1.0, value.waited_minutes / urgency.minutes_for_full),
    }
    factors = score_urgency(value, urgency).factors
    for name, level in levels.items():
        assert factors[name] == pytest.approx(urgency.weights[name] * level, abs=0.01), name


@pytest.mark.parametrize(
    ("value", "factors", "score", "priority"),
    [
        # Worked by hand from data/triage/urgency.yml: the cues (lawyer 0.8 + now 0.4 + refund now 0.3) cap at 1.
        (
            UrgencyInputs(0.5, 1.0, "refund now or I call my lawyer", "gold", repeat_contacts_7d=3, waited_minutes=60),
            {"severity": 15.0, "sentiment": 20.0, "cues": 20.0, "tier": 5.0, "repeats": 10.0, "waiting": 5.0},
            75.0,
            1,
        ),
        (
            UrgencyInputs(0.6, 0.25, "快递到哪了", "standard", repeat_contacts_7d=1, waited_minutes=30),
            {"severity": 18.0, "sentiment": 5.0, "cues": 0.0, "tier": 0.0, "repeats": 3.33, "waiting": 2.5},
            28.83,
            3,
        ),
    ],
)
def test_worked_examples_score_what_the_configuration_says(
    value: UrgencyInputs, factors: dict[str, float], score: float, priority: int
) -> None:
    urgency = score_urgency(value, CONFIG.urgency)
    assert (urgency.factors, urgency.score, urgency.band.priority) == (factors, score, priority)


@given(inputs, unit, unit, st.integers(min_value=0, max_value=50), st.floats(min_value=0, max_value=1e4))
def test_score_is_monotonic_in_each_numeric_factor(
    value: UrgencyInputs, severity: float, negativity: float, repeats: int, waited: float
) -> None:
    assert score(replace(value, severity=max(value.severity, severity))) >= score(value)
    assert score(replace(value, negativity=max(value.negativity, negativity))) >= score(value)
    assert score(replace(value, repeat_contacts_7d=value.repeat_contacts_7d + repeats)) >= score(value)
    assert score(replace(value, waited_minutes=value.waited_minutes + waited)) >= score(value)


@given(inputs, st.sampled_from(TIERS))
def test_score_is_monotonic_in_tier(value: UrgencyInputs, tier: str) -> None:
    higher = tier if CONFIG.urgency.tiers[tier] >= CONFIG.urgency.tiers[value.customer_tier] else value.customer_tier
    assert score(replace(value, customer_tier=higher)) >= score(value)


@given(inputs, st.sampled_from(CUE_TEXTS))
def test_adding_urgent_words_never_lowers_the_score(value: UrgencyInputs, extra: str) -> None:
    assert score(replace(value, text=f"{value.text} {extra}")) >= score(value)


def test_cues_are_found_and_named_in_both_languages() -> None:
    calm = score_urgency(UrgencyInputs(0.5, 0.0, "where is my parcel"), CONFIG.urgency)
    legal = score_urgency(UrgencyInputs(0.5, 0.0, "我要投诉到12315，再不处理找律师"), CONFIG.urgency)
    fraud = score_urgency(UrgencyInputs(0.5, 0.0, "someone STOLE my card, fix it right now"), CONFIG.urgency)
    assert calm.cues == [] and calm.factors["cues"] == 0
    assert legal.cues == ["legal_threat"] and legal.factors["cues"] == 16.0
    assert set(fraud.cues) == {"fraud", "immediacy"} and fraud.factors["cues"] == 20.0


def test_priority_and_sla_follow_the_configured_bands() -> None:
    worst = score_urgency(UrgencyInputs(1.0, 1.0, "骗子盗刷，马上处理，否则找律师", "vip", 9, 999), CONFIG.urgency)
    calmest = score_urgency(UrgencyInputs(0.0, 0.0, "hello"), CONFIG.urgency)
    assert worst.score == 100.0 and worst.band.priority == 1 and worst.band.first_response_minutes == 15
    assert calmest.score == 0.0 and calmest.band.priority == 4 and calmest.band.resolution_minutes == 4320


def test_unknown_tier_and_negative_counts_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown customer tier 'platinum'"):
        score_urgency(UrgencyInputs(0.5, 0.5, "x", customer_tier="platinum"), CONFIG.urgency)
    with pytest.raises(InvalidInput, match="cannot be negative"):
        score_urgency(UrgencyInputs(0.5, 0.5, "x", repeat_contacts_7d=-1), CONFIG.urgency)


def test_malformed_urgency_config_names_the_problem(tmp_path: Path) -> None:
    broken = tmp_path / "urgency.yml"
    broken.write_text("weights: {severity: 30}\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="incomplete or malformed"):
        load_urgency(broken)
    broken.write_text("weights: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_urgency(broken)
    with pytest.raises(InvalidInput, match="does not exist"):
        load_urgency(tmp_path / "missing.yml")


def _urgency_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (TRIAGE_DIR / "urgency.yml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "urgency.yml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  waiting: 10\n", "  waiting: 30\n", "weights must add up to 100, not 120"),
        ("tiers: {standard: 0.0,", "tiers: {basic: 0.0,", "tiers must include 'standard'"),
        ("vip: 1.0}", "vip: 3}", "each be between 0 and 1"),
        ("- {priority: 4, min_score: 0,", "- {priority: 5, min_score: 0,", r"P1–P4, each once.*\[1, 2, 3, 5\]"),
        ("- {priority: 2, min_score: 45,", "- {priority: 2, min_score: 75,", r"P1 needing the highest.*\[2, 1, 3, 4\]"),
        ("- {priority: 4, min_score: 0,", "- {priority: 4, min_score: 10,", "P4's min_score must be 0"),
        ("first_response_minutes: 60,", "first_response_minutes: 600,", "P2 needs 0 < first_response_minutes"),
    ],
)
def test_urgency_config_that_would_misprioritise_is_refused(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_urgency(_urgency_with(tmp_path, old, new))


def test_sla_minutes_come_from_the_config(tmp_path: Path) -> None:
    slower = load_urgency(_urgency_with(tmp_path, "first_response_minutes: 15,", "first_response_minutes: 20,"))
    worst = score_urgency(UrgencyInputs(1.0, 1.0, "骗子盗刷，马上处理，否则找律师", "vip", 9, 999), slower)
    assert (worst.band.priority, worst.band.first_response_minutes) == (1, 20)
