"""Analytics over a generated CRM history: each method finds what the generator planted, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from router.analytics import demo_data, kpis, rules, segments, similar, staffing, topics
from router.analytics.csat_drivers import csat_drivers
from router.analytics.demo_texts import RESOLUTIONS
from router.analytics.period import Period
from router.bootstrap import Kefu
from router.crm.models import Conversation, Customer, Interaction, Speaker, Ticket, TicketStatus
from router.errors import InvalidInput, NotFound
from tests.support.cli import invoke_kefu, run_kefu
from tests.support.crm import make_kefu


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kefu]:
    """A SQLite CRM with 300 demo customers' 90 days (written once for the module: it takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("analytics")
    kefu = make_kefu(f"sqlite:///{tmp_path / 'kefu.db'}", tmp_path)
    with kefu.uow() as uow:
        demo_data.generate_history(uow.session, kefu.passwords, kefu.settings.data_dir, customers=300, days=90, seed=11)
        uow.commit()
    yield kefu
    kefu.dispose()


PERIOD = Period.last(91)


def test_demo_history_is_bilingual_multichannel_and_consistent(history: Kefu) -> None:
    with history.uow() as uow:
        session = uow.session
        languages = set(session.scalars(select(Interaction.language).distinct()))
        channels = {c.value for c in session.scalars(select(Conversation.channel).distinct())}
        conversations = session.scalar(select(func.count(Conversation.id)))
        orphan_tickets = session.scalar(select(func.count(Ticket.id)).where(Ticket.conversation_id.is_(None)))
        late = session.scalar(select(func.count(Ticket.id)).where(Ticket.first_responded_at < Ticket.created_at))
        closed_without_time = session.scalar(
            select(func.count(Ticket.id)).where(Ticket.status == TicketStatus.closed, Ticket.resolved_at.is_(None))
        )
        customers = session.scalar(select(func.count(Customer.id)))
    assert {"zh", "en"} <= languages and channels == {"web", "telegram", "rest"}
    assert conversations > 1000 and customers == 300
    assert orphan_tickets == 0 and late == 0 and closed_without_time == 0


def test_kpis_match_counts_taken_straight_from_the_crm(history: Kefu) -> None:
    with history.uow() as uow:
        report = kpis.compute_kpis(uow.session, PERIOD, "channel")
        conversations = uow.session.scalar(select(func.count(Conversation.id)))
        with_ticket = uow.session.scalar(select(func.count(func.distinct(Ticket.conversation_id))))
        fallbacks = uow.session.scalar(select(func.count(Interaction.id)).where(Interaction.intent == "nlu_fallback"))
        customer_turns = uow.session.scalar(
            select(func.count(Interaction.id)).where(Interaction.speaker == Speaker.customer)
        )
    assert report.overall["conversations"] == conversations
    assert report.overall["containment_rate"] == pytest.approx((conversations - with_ticket) / conversations, abs=1e-4)
    assert report.overall["fallback_rate"] == pytest.approx(fallbacks / customer_turns, abs=1e-4)
    assert sum(row["conversations"] for row in report.by_group) == conversations
    assert {row["channel"] for row in report.by_group} == {"web", "telegram", "rest"}
    assert sum(row["count"] for row in report.csat_distribution) > 0
    fallback = next(row for row in report.intent_confidence if row["intent"] == "nlu_fallback")
    assert fallback == report.intent_confidence[0]  # the least confident intent is listed first
    with pytest.raises(ValueError):
        kpis.compute_kpis(uow.session, PERIOD, "weekday")


def test_regression_recovers_the_planted_csat_effects(history: Kefu) -> None:
    with history.uow() as uow:
        report = csat_drivers(uow.session, PERIOD)
    assert report is not None and report.observations > 100
    drivers = {driver.factor: driver for driver in report.drivers}
    for factor, planted in demo_data.CSAT_EFFECTS.items():
        driver = drivers[factor]
        assert driver.ci_high < 0, f"{factor} should lower CSAT"
        # Rounding to whole stars and capping at 5 shrink effects a little; the size must still be about right.
        assert 0.6 * planted > driver.coefficient > 1.4 * planted, (factor, driver)
    # Channel has no planted effect: its interval must include zero.
    assert all(d.ci_low < 0 < d.ci_high for name, d in drivers.items() if name.startswith("channel_"))


def test_segments_separate_frequent_happy_customers_from_complainers_and_flag_the_planted_anomalies(
    history: Kefu,
) -> None:
    with history.uow() as uow:
        report = segments.segment_report(uow.session, PERIOD)
    assert report is not None and 2 <= report.k <= 6
    customers = report.customers.set_index("customer_id")
    # The generator's first customers are the anomalous ones (45 complaints in ten days).
    assert customers.loc[list(range(1, demo_data.ANOMALOUS_CUSTOMERS + 1)), "anomaly"].all()
    assert customers["anomaly"].mean() < 0.05
    loyal = max(report.segments, key=lambda profile: profile.means["csat"] - profile.means["complaint_rate"])
    assert "rarely complains" in loyal.description and "satisfied" in loyal.description
    assert any("often complains" in profile.description for profile in report.segments)


def test_apriori_finds_the_planted_rule(history: Kefu) -> None:
    with history.uow() as uow:
        found = rules.rule_report(uow.session, PERIOD, min_support=0.01)
    antecedent, consequent = demo_data.PLANTED_RULE
    planted = [rule for rule in found if set(rule.antecedent) == antecedent and rule.consequent == (consequent,)]
    assert planted, [rule.text for rule in found[:10]]
    assert planted[0].confidence > 0.7 and planted[0].lift > 1.5


def test_topics_find_category_terms_and_the_emerging_battery_complaints(history: Kefu) -> None:
    with history.uow() as uow:
        report = topics.topic_report(uow.session, Period.last(demo_data.EMERGING_DAYS), num_topics=6)
    delivery_terms = {term for term, _ in report.key_terms["delivery"]}
    assert {"快递", "物流"} & delivery_terms and {"courier", "tracking"} & delivery_terms
    emerging = {row["term"] for row in report.emerging}
    assert {"鼓包", "battery"} <= emerging, report.emerging
    assert len(report.topics) == 6 and report.documents > 20


def test_similar_tickets_are_earlier_resolved_ones_of_the_same_kind_with_their_resolution(history: Kefu) -> None:
    with history.uow() as uow:
        ticket = uow.session.scalars(
            select(Ticket)
            .where(Ticket.category == "delivery", Ticket.language == "zh")
            .order_by(Ticket.created_at.desc())
        ).first()
        ticket_id, ticket_created = ticket.id, ticket.created_at
        found = similar.similar_tickets(uow.session, ticket_id, k=5, visible_teams=None)
        found_ids = [f.ticket_id for f in found]
        created = dict(uow.session.execute(select(Ticket.id, Ticket.created_at).where(Ticket.id.in_(found_ids))).all())
        with pytest.raises(NotFound):
            similar.similar_tickets(uow.session, 10**9, visible_teams=None)
        with pytest.raises(InvalidInput):
            similar.similar_tickets(uow.session, ticket_id, k=0, visible_teams=None)
    assert len(found) == 5 and ticket_id not in found_ids
    assert [f.similarity for f in found] == sorted((f.similarity for f in found), reverse=True)
    assert all(f.category == "delivery" and created[f.ticket_id] <= ticket_created for f in found)
    assert all(f.resolution == RESOLUTIONS["delivery"]["zh"] for f in found)


def test_staffing_plan_covers_every_hour_of_every_team(history: Kefu) -> None:
    with history.uow() as uow:
        plans = staffing.staffing_plan(uow.session, Period.last(30), growth=10)
    assert {plan.team for plan in plans} == {"logistics", "after_sales", "billing", "account", "service"}
    for plan in plans:
        assert all(on >= need - 1e-9 for on, need in zip(plan.on_duty, plan.required, strict=True))
        assert plan.agents == sum(plan.shift_starts) and plan.binding


def test_demo_history_and_analyses_work_the_same_on_postgresql(kefu_any_db: Kefu) -> None:
    with kefu_any_db.uow() as uow:
        summary = demo_data.generate_history(
            uow.session, kefu_any_db.passwords, kefu_any_db.settings.data_dir, customers=60, seed=3
        )
        uow.commit()
    with kefu_any_db.uow() as uow:
        report = kpis.compute_kpis(uow.session, PERIOD)
        assert report.overall["conversations"] == summary.conversations
        assert report.overall["tickets"] == summary.tickets
        assert segments.segment_report(uow.session, PERIOD) is not None
        latest = uow.session.scalars(select(Ticket).order_by(Ticket.created_at.desc())).first()
        assert similar.similar_tickets(uow.session, latest.id, k=3, visible_teams=None)


def test_demo_data_refuses_silly_sizes(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        with pytest.raises(InvalidInput, match="customers"):
            demo_data.generate_history(uow.session, kefu.passwords, kefu.settings.data_dir, customers=5)
        with pytest.raises(InvalidInput, match="days"):
            demo_data.generate_history(uow.session, kefu.passwords, kefu.settings.data_dir, days=10_000)


def test_kefu_demo_data_and_report_commands(tmp_path: Path) -> None:
    env = {"KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}", "KEFU_VAR_DIR": str(tmp_path)}
    first = run_kefu("demo-data", "--customers", "40", "--days", "60", env=env, timeout=300)
    assert first.returncode == 0 and "40 customers" in first.stdout, first.stdout + first.stderr
    again = invoke_kefu("demo-data", "--customers", "40", env=env)
    assert again.returncode == 1 and "--append" in again.stdout
    report = run_kefu("analytics", "report", "--out", str(tmp_path / "out"), "--days", "60", env=env, timeout=300)
    assert report.returncode == 0, report.stdout + report.stderr
    for name in ("kpis", "topics", "csat_drivers", "segments", "rules", "staffing"):
        assert (tmp_path / "out" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / "out" / f"{name}.csv").exists()
    assert (tmp_path / "out" / "kpis.csv").read_text(encoding="utf-8").startswith("team,conversations")
