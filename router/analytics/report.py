"""Every analysis as one shape (tables + chart) so the web pages, the CLI and the CSV/PNG exports share one path."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy.orm import Session

from router.analytics import charts, csat_drivers, kpis, rules, segments, staffing, topics
from router.analytics.period import Period
from router.errors import NotFound

Row = Mapping[str, object]


@dataclass(frozen=True)
class Table:
    """A titled table of rows with the same keys."""

    title: str
    rows: Sequence[Row]


@dataclass(frozen=True)
class AnalysisResult:
    """One analysis of one period: its main table (the CSV), more tables for the page, and its chart."""

    name: str
    title: str
    period: Period
    rows: Sequence[Row]
    chart: Callable[[], bytes]
    tables: list[Table] = field(default_factory=list)
    note: str = ""


def _kpis(session: Session, period: Period) -> AnalysisResult:
    by_team = kpis.compute_kpis(session, period, "team")
    by_channel = kpis.compute_kpis(session, period, "channel")
    tables = [
        Table("Overall", [by_team.overall]),
        Table("By channel", by_channel.by_group),
        Table("CSAT distribution", by_team.csat_distribution),
        Table("NLU confidence per intent", by_team.intent_confidence),
    ]
    return AnalysisResult(
        "kpis", "KPIs by team", period, by_team.by_group, lambda: charts.kpi_chart(by_team, "team"), tables
    )


def _topics(session: Session, period: Period) -> AnalysisResult:
    report = topics.topic_report(session, period)
    rows: list[Row] = [
        {"topic": topic.number, "words": topic.label, "share": topic.share, "previous_share": topic.previous_share}
        for topic in report.topics
    ]
    terms = [
        {"category": category, "key_terms": ", ".join(term for term, _ in pairs)}
        for category, pairs in report.key_terms.items()
    ]
    tables = [
        Table("Key terms per category (TF-IDF)", terms),
        Table("Emerging terms vs previous period", report.emerging),
    ]
    return AnalysisResult(
        "topics",
        "Complaint topics",
        period,
        rows,
        lambda: charts.topics_chart(report),
        tables,
        f"{report.documents} complaints",
    )


def _drivers(session: Session, period: Period) -> AnalysisResult:
    report = csat_drivers.csat_drivers(session, period)
    if report is None:
        return AnalysisResult(
            "csat_drivers",
            "CSAT drivers",
            period,
            [],
            lambda: charts.drivers_chart(None),
            note=f"fewer than {csat_drivers.MIN_OBSERVATIONS} rated tickets in this period",
        )
    fit = [{"observations": report.observations, "r_squared": report.r_squared, "intercept": report.intercept}]
    return AnalysisResult(
        "csat_drivers",
        "CSAT drivers (linear regression)",
        period,
        [asdict(driver) for driver in report.drivers],
        lambda: charts.drivers_chart(report),
        [Table("Fit", fit)],
    )


def _segments(session: Session, period: Period) -> AnalysisResult:
    report = segments.segment_report(session, period)
    if report is None:
        return AnalysisResult(
            "segments",
            "Customer segments",
            period,
            [],
            lambda: charts.segments_chart(None),
            note="fewer than 10 active customers in this period",
        )
    rows: list[Row] = [
        {"segment": p.number, "customers": p.customers, **p.means, "profile": p.description} for p in report.segments
    ]
    odd = report.customers[report.customers["anomaly"]].round(3).to_dict("records")
    silhouettes = [{"k": k, "silhouette": score} for k, score in report.silhouettes.items()]
    return AnalysisResult(
        "segments",
        f"Customer segments (k={report.k})",
        period,
        rows,
        lambda: charts.segments_chart(report),
        [Table("Silhouette per k", silhouettes), Table("Unusual customers (isolation forest)", odd)],
    )


def _rules(session: Session, period: Period) -> AnalysisResult:
    found = rules.rule_report(session, period)
    rows: list[Row] = [
        {"rule": rule.text, "support": rule.support, "confidence": rule.confidence, "lift": rule.lift} for rule in found
    ]
    return AnalysisResult("rules", "Association rules", period, rows, lambda: charts.rules_chart(found))


def _staffing(session: Session, period: Period) -> AnalysisResult:
    plans = staffing.staffing_plan(session, period)
    rows: list[Row] = [
        {
            "team": plan.team,
            "hour": hour,
            "forecast_tickets": plan.forecast[hour],
            "required_agents": plan.required[hour],
            "on_duty": plan.on_duty[hour],
            "shifts_starting": plan.shift_starts[hour],
        }
        for plan in plans
        for hour in range(staffing.HOURS)
    ]
    summary = [{"team": plan.team, "agents": plan.agents, "binding_hours": len(plan.binding)} for plan in plans]
    binding = [{"team": plan.team, **constraint} for plan in plans for constraint in plan.binding]
    targets = staffing.StaffingTargets()
    note = (
        f"{targets.shift_hours}-hour shifts, {targets.handle_minutes:g} min per ticket, "
        f"{targets.occupancy:.0%} target occupancy; forecast = average day of the period"
    )
    return AnalysisResult(
        "staffing",
        "Staffing plan (linear program)",
        period,
        rows,
        lambda: charts.staffing_chart(plans),
        [Table("Agents per team", summary), Table("Binding constraints", binding)],
        note,
    )


REPORTS: dict[str, Callable[[Session, Period], AnalysisResult]] = {
    "kpis": _kpis,
    "topics": _topics,
    "csat_drivers": _drivers,
    "segments": _segments,
    "rules": _rules,
    "staffing": _staffing,
}


def build(session: Session, name: str, period: Period) -> AnalysisResult:
    """The named analysis over ``period``, computed now from the CRM (nothing cached, so nothing goes stale)."""
    if name not in REPORTS:
        raise NotFound(f"no analysis called {name!r}; there are {', '.join(REPORTS)}")
    return REPORTS[name](session, period)
