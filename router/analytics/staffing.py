"""Staffing: a linear program (scipy ``linprog``) for agents per team per hour from forecast volume and SLA targets.

Each team's agents work ``shift_hours`` consecutive hours starting at any hour of the day. An hour is covered when
the agents on shift can handle its forecast tickets at no more than the target occupancy, the load at which the
first-response SLA is still met (agents busier than that leave new tickets waiting). Minimise agent-shifts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from sqlalchemy.orm import Session

from router.analytics import frames
from router.analytics.period import Period

HOURS = 24


@dataclass(frozen=True)
class StaffingTargets:
    """The service assumptions behind a plan, shown next to it so a supervisor can challenge them."""

    handle_minutes: float = 20.0
    occupancy: float = 0.8
    shift_hours: int = 8
    min_agents: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.occupancy <= 1:
            raise ValueError("occupancy must be in (0, 1]")
        if not 1 <= self.shift_hours <= HOURS:
            raise ValueError("shift_hours must be between 1 and 24")
        if self.handle_minutes <= 0 or self.min_agents < 0:
            raise ValueError("handle_minutes must be positive and min_agents not negative")


@dataclass(frozen=True)
class TeamPlan:
    """One team's optimum: shift starts, agents on duty per hour, and the hours that decide the headcount."""

    team: str
    forecast: list[float]
    required: list[float]
    shift_starts: list[int]
    on_duty: list[int]
    agents: int
    binding: list[dict[str, object]]


def coverage_matrix(shift_hours: int) -> np.ndarray:
    """Row h, column s is 1 when a shift starting at hour s is working at hour h (shifts wrap past midnight)."""
    matrix = np.zeros((HOURS, HOURS))
    for start in range(HOURS):
        for offset in range(shift_hours):
            matrix[(start + offset) % HOURS, start] = 1
    return matrix


def plan_team(team: str, forecast: np.ndarray, targets: StaffingTargets) -> TeamPlan:
    """The fewest agent-shifts covering every hour's required agents; binding hours come from the LP's duals."""
    required = np.maximum(forecast * targets.handle_minutes / 60 / targets.occupancy, targets.min_agents)
    cover = coverage_matrix(targets.shift_hours)
    costs = np.ones(HOURS)
    # linprog wants A_ub x <= b_ub, so "coverage >= required" is written negated.
    integer = linprog(costs, A_ub=-cover, b_ub=-required, bounds=(0, None), integrality=np.ones(HOURS), method="highs")
    relaxed = linprog(costs, A_ub=-cover, b_ub=-required, bounds=(0, None), method="highs")
    if integer.status != 0 or relaxed.status != 0:
        raise ValueError(f"no staffing plan for {team}: {integer.message}")
    starts = np.rint(integer.x).astype(int)
    on_duty = (cover @ starts).astype(int)
    binding = [
        {
            "hour": hour,
            "required_agents": round(float(required[hour]), 2),
            "forecast_tickets": round(float(forecast[hour]), 2),
            "shadow_price": round(float(-relaxed.ineqlin.marginals[hour]), 3),
            "why": (
                f"{forecast[hour]:.1f} tickets × {targets.handle_minutes:g} min ÷ 60 ÷ {targets.occupancy:.0%} "
                f"occupancy = {required[hour]:.2f} agents; each extra agent needed here costs "
                f"{-relaxed.ineqlin.marginals[hour]:.2f} more agent-shifts"
            ),
        }
        for hour in range(HOURS)
        if -relaxed.ineqlin.marginals[hour] > 1e-9
    ]
    return TeamPlan(
        team,
        [round(float(v), 3) for v in forecast],
        [round(float(v), 3) for v in required],
        starts.tolist(),
        on_duty.tolist(),
        int(starts.sum()),
        binding,
    )


def hourly_forecast(session: Session, period: Period, growth: float = 1.0) -> dict[str, np.ndarray]:
    """Tickets per hour of day per team: the period's daily average by hour, scaled by expected ``growth``."""
    tickets = frames.tickets(session, period)
    days = max((period.end - period.start).total_seconds() / 86400, 1.0)
    forecast: dict[str, np.ndarray] = {}
    for team, rows in tickets.groupby("team"):
        counts = np.bincount(rows["created_at"].dt.hour.to_numpy(), minlength=HOURS).astype(float)
        forecast[str(team)] = counts / days * growth
    return forecast


def staffing_plan(
    session: Session, period: Period, targets: StaffingTargets | None = None, growth: float = 1.0
) -> list[TeamPlan]:
    """An hourly staffing plan per team for a day like the average day of ``period``."""
    if not 0 < growth <= 100:
        raise ValueError("growth must be a positive factor up to 100")
    targets = targets or StaffingTargets()
    return [
        plan_team(team, volume, targets) for team, volume in sorted(hourly_forecast(session, period, growth).items())
    ]
