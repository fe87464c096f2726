"""Service KPIs over a period, per team and channel: the numbers a supervisor checks first."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session

from router.analytics import frames
from router.analytics.period import Period

# Customer turns the NLU was unsure of: the same threshold the assistant falls back at.
FALLBACK_INTENT = "nlu_fallback"
GROUPINGS = ("team", "channel")


@dataclass(frozen=True)
class KpiReport:
    """Every KPI table of one period, each a list of plain rows the page, the CSV and the tests read."""

    period: Period
    overall: dict[str, float | int | None]
    by_group: list[dict[str, object]]
    csat_distribution: list[dict[str, int]]
    intent_confidence: list[dict[str, object]]


def _rate(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _median(series: pd.Series) -> float | None:
    series = series.dropna()
    return round(float(series.median()), 3) if len(series) else None


def _ticket_kpis(tickets: pd.DataFrame) -> dict[str, float | int | None]:
    responded_late = tickets["first_responded_at"] > tickets["first_response_due_at"]
    resolved_late = tickets["resolved_at"] > tickets["resolution_due_at"]
    return {
        "tickets": len(tickets),
        "first_response_hours_median": _median(tickets["first_response_hours"]),
        "resolution_hours_median": _median(tickets["resolution_hours"]),
        "sla_breach_rate": _rate(float((responded_late | resolved_late).sum()), len(tickets)),
        "reopen_rate": _rate(float((tickets["reopen_count"] > 0).sum()), float(tickets["resolved_at"].notna().sum())),
        "csat_mean": round(float(tickets["csat"].mean()), 3) if tickets["csat"].notna().any() else None,
    }


def _conversation_kpis(conversations: pd.DataFrame) -> dict[str, float | int | None]:
    contained = conversations["ticket_id"].isna().sum()
    return {"conversations": len(conversations), "containment_rate": _rate(float(contained), len(conversations))}


def compute_kpis(session: Session, period: Period, group_by: str = "team") -> KpiReport:
    """Volume, containment, response/resolution times, SLA breaches, reopens, CSAT and NLU health for ``period``."""
    if group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {GROUPINGS}")
    tickets = frames.tickets(session, period)
    conversations = frames.conversations(session, period)
    turns = frames.customer_turns(session, period)
    ratings = frames.ratings(session, period)
    overall = {**_conversation_kpis(conversations), **_ticket_kpis(tickets)}
    overall["fallback_rate"] = _rate(float((turns["intent"] == FALLBACK_INTENT).sum()), len(turns))
    rows: list[dict[str, object]] = []
    # Contained conversations have no team: "bot" is their team, so the bot's share shows next to people's.
    keys = sorted(set(conversations[group_by]) | set(tickets[group_by]))
    for key in keys:
        row: dict[str, object] = {group_by: key}
        row.update(_conversation_kpis(conversations[conversations[group_by] == key]))
        row.update(_ticket_kpis(tickets[tickets[group_by] == key]))
        rows.append(row)
    distribution = [{"score": score, "count": int((ratings["score"] == score).sum())} for score in range(1, 6)]
    confidence = (
        turns.dropna(subset=["intent"])
        .groupby("intent")["confidence"]
        .agg(["count", "mean", "min"])
        .reset_index()
        .sort_values("mean")
    )
    intent_rows = [
        {
            "intent": row.intent,
            "turns": int(row.count),
            "mean_confidence": round(float(row.mean), 3),
            "min_confidence": round(float(row.min), 3),
        }
        for row in confidence.itertuples()
    ]
    return KpiReport(period, overall, rows, distribution, intent_rows)
