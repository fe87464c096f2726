"""Each analytics method recovers structure planted in data whose answer is known."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from router.analytics import export
from router.analytics.csat_drivers import fit_ols
from router.analytics.period import Period
from router.analytics.rules import mine_rules
from router.analytics.segments import FEATURES, segment_customers
from router.analytics.staffing import StaffingTargets, plan_team
from router.analytics.topics import emerging_terms, key_terms, lda_topics, topic_tokens
from router.errors import InvalidInput

PLANTED_VOCABULARIES = {
    "delivery": ["快递", "物流", "包裹", "courier", "tracking", "parcel"],
    "billing": ["扣款", "账单", "发票", "charged", "invoice", "billing"],
    "account": ["账号", "密码", "验证码", "login", "password", "locked"],
}


def _planted_corpus(rng: np.random.Generator, documents_per_topic: int = 60) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, vocabulary in PLANTED_VOCABULARIES.items():
        for _ in range(documents_per_topic):
            words = rng.choice(vocabulary, size=6)
            # Function words in both languages: stop words must remove them before they dominate every topic.
            texts.append(" ".join([*words, "the", "and", "我们", "一直", "了"]))
            labels.append(label)
    return texts, labels


def test_topic_tokens_segment_chinese_and_drop_stop_words() -> None:
    assert topic_tokens("我们的快递一直不更新 and the parcel is late") == ["快递", "更新", "parcel", "late"]


def test_tfidf_key_terms_of_each_category_are_its_planted_words() -> None:
    texts, labels = _planted_corpus(np.random.default_rng(0))
    terms = key_terms(texts, labels, top=4)
    for label, vocabulary in PLANTED_VOCABULARIES.items():
        assert {term for term, _ in terms[label]} <= set(vocabulary), terms[label]


def test_lda_separates_the_planted_topics() -> None:
    texts, _ = _planted_corpus(np.random.default_rng(1))
    topics = lda_topics(texts, [], num_topics=3)
    found = [{word for word, _ in topic.words[:4]} for topic in topics]
    for vocabulary in PLANTED_VOCABULARIES.values():
        assert sum(words <= set(vocabulary) for words in found) == 1, found
    assert sum(topic.share for topic in topics) == pytest.approx(1.0, abs=0.01)


def test_lda_topic_shares_show_a_topic_that_grew_since_the_previous_period() -> None:
    texts, labels = _planted_corpus(np.random.default_rng(2))
    account = [text for text, label in zip(texts, labels, strict=True) if label == "account"]
    before = [text for text, label in zip(texts, labels, strict=True) if label != "account"] + account[:6]
    topics = lda_topics(texts, before, num_topics=3)
    grown = next(t for t in topics if {w for w, _ in t.words[:4]} <= set(PLANTED_VOCABULARIES["account"]))
    assert grown.share == pytest.approx(1 / 3, abs=0.05)
    assert grown.previous_share == pytest.approx(6 / 126, abs=0.03)


def test_emerging_terms_are_the_ones_absent_before() -> None:
    texts, _ = _planted_corpus(np.random.default_rng(3))
    new = ["充电宝电池鼓包发烫", "power bank battery swelling"] * 10
    emerging = [row["term"] for row in emerging_terms(texts + new, texts)]
    assert {"鼓包", "电池", "battery", "swelling"} <= set(emerging)
    assert not set(emerging) & {word for words in PLANTED_VOCABULARIES.values() for word in words}


def test_regression_recovers_planted_coefficients_inside_their_intervals() -> None:
    rng = np.random.default_rng(4)
    n = 800
    factors = pd.DataFrame(
        {
            "first_response_hours": rng.exponential(2, n),
            "transfers": rng.poisson(0.5, n).astype(float),
            "reopened": (rng.random(n) < 0.2).astype(float),
        }
    )
    planted = {"first_response_hours": -0.2, "transfers": -0.5, "reopened": -1.0}
    csat = 4.5 + sum(effect * factors[name] for name, effect in planted.items()) + rng.normal(0, 0.3, n)
    drivers, intercept, r_squared = fit_ols(factors, csat)
    assert intercept == pytest.approx(4.5, abs=0.1) and r_squared > 0.5
    for driver in drivers:
        assert driver.ci_low < planted[driver.factor] < driver.ci_high
        assert driver.p_value < 1e-6


def test_regression_drops_a_factor_that_never_varies() -> None:
    factors = pd.DataFrame({"x": np.arange(40.0), "constant": np.ones(40)})
    drivers, _, _ = fit_ols(factors, pd.Series(2 * np.arange(40.0) + 1))
    assert [driver.factor for driver in drivers] == ["x"] and drivers[0].coefficient == pytest.approx(2)


def _planted_customers(rng: np.random.Generator) -> tuple[pd.DataFrame, list[int]]:
    centres = {0: (5, 8, 0.1, 4.6), 1: (10, 5, 0.8, 2.2), 2: (70, 1.5, 0.3, 3.8)}
    rows, truth = [], []
    for segment, centre in centres.items():
        for _ in range(120):
            rows.append(np.array(centre) * rng.normal(1, 0.08, 4))
            truth.append(segment)
    return pd.DataFrame(rows, columns=list(FEATURES)), truth


def test_kmeans_recovers_the_planted_segments_with_k_chosen_by_silhouette() -> None:
    features, truth = _planted_customers(np.random.default_rng(5))
    k, silhouettes, labels, _ = segment_customers(features)
    assert k == 3 and silhouettes[3] == max(silhouettes.values())
    assert adjusted_rand_score(truth, labels) > 0.95


def test_isolation_forest_flags_planted_outliers_and_few_others() -> None:
    features, truth = _planted_customers(np.random.default_rng(6))
    outliers = pd.DataFrame([(1, 45, 1.0, 1.0), (2, 50, 1.0, 1.2), (1, 60, 1.0, 1.1)], columns=list(FEATURES))
    _, _, labels, anomalies = segment_customers(pd.concat([features, outliers], ignore_index=True))
    assert anomalies[-3:].all() and anomalies[: len(truth)].sum() <= 0.02 * len(truth) + 1
    assert adjusted_rand_score(truth, labels[: len(truth)]) > 0.95


def test_apriori_finds_the_planted_rule_with_its_confidence() -> None:
    rng = np.random.default_rng(6)
    transactions = []
    for _ in range(1000):
        category = str(rng.choice(["category=delivery", "category=product_quality", "category=account"]))
        product = str(rng.choice(["product=phone", "product=headphones", "product=kettle"]))
        planted = category == "category=product_quality" and product == "product=headphones"
        reopened = rng.random() < (0.9 if planted else 0.1)
        transactions.append([category, product, "outcome=reopened" if reopened else "outcome=resolved_first_time"])
    rules = mine_rules(transactions, min_support=0.02, min_confidence=0.6)
    best = rules[0]
    assert best.antecedent == ("category=product_quality", "product=headphones")
    assert best.consequent == ("outcome=reopened",)
    assert best.confidence == pytest.approx(0.9, abs=0.06) and best.lift > 3
    assert all(rule.consequent[0].startswith(("outcome=", "csat=")) for rule in rules)


def test_staffing_lp_finds_the_known_optimum_for_a_day_shift() -> None:
    forecast = np.array([0] * 9 + [6] * 8 + [0] * 7, dtype=float)  # 6 tickets/hour from 09:00 to 17:00
    plan = plan_team("logistics", forecast, StaffingTargets(handle_minutes=60, occupancy=1.0, shift_hours=8))
    assert plan.agents == 6 and plan.shift_starts[9] == 6
    assert plan.on_duty == [0] * 9 + [6] * 8 + [0] * 7
    assert plan.binding and all(9 <= row["hour"] < 17 for row in plan.binding)


def test_staffing_lp_covers_round_the_clock_with_the_fewest_overlapping_shifts() -> None:
    forecast = np.full(24, 1.5)  # 1.5 tickets/hour × 30 min ÷ 75 % occupancy = exactly 1 agent every hour
    plan = plan_team("service", forecast, StaffingTargets(handle_minutes=30, occupancy=0.75, shift_hours=8))
    assert plan.agents == 3 and plan.on_duty == [1] * 24
    peak = forecast.copy()
    peak[12] = 4.5  # one busy hour needs 3 agents: two extra shifts must cover it
    plan = plan_team("service", peak, StaffingTargets(handle_minutes=30, occupancy=0.75, shift_hours=8))
    assert plan.agents == 5 and plan.on_duty[12] == 3 and min(plan.on_duty) >= 1
    assert any(row["hour"] == 12 for row in plan.binding)


def test_staffing_refuses_impossible_targets() -> None:
    with pytest.raises(ValueError, match="occupancy"):
        StaffingTargets(occupancy=0)
    with pytest.raises(ValueError, match="shift_hours"):
        StaffingTargets(shift_hours=25)


def test_csv_export_neutralises_spreadsheet_formulas_and_keeps_chinese() -> None:
    text = export.to_csv(
        [{"term": '=HYPERLINK("http://x")', "zh": "快递", "n": 3}, {"term": "-1", "zh": "退款", "n": 4}]
    )
    lines = text.splitlines()
    assert lines[0] == "term,zh,n"
    assert lines[1].startswith("\"'=HYPERLINK") and "快递" in lines[1]
    assert lines[2].startswith("'-1,退款")
    assert export.to_csv([]) == ""


def test_period_rejects_bad_bounds() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(InvalidInput):
        Period(now, now)
    with pytest.raises(InvalidInput):
        Period(now.replace(tzinfo=None), now.replace(tzinfo=None) + timedelta(days=1))
    with pytest.raises(InvalidInput):
        Period.last(0)
    assert Period(now, now + timedelta(days=7)).previous() == Period(now - timedelta(days=7), now)
