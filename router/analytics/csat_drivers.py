"""CSAT drivers: an ordinary least squares regression of ticket CSAT on service factors, with confidence intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy.orm import Session

from router.analytics import frames
from router.analytics.period import Period

FACTORS = {
    "first_response_hours": "first response time (hours)",
    "resolution_hours": "resolution time (hours)",
    "transfers": "transfers between teams",
    "reopened": "ticket was reopened",
    "urgent_priority": "priority P1/P2 (vs P3/P4)",
}
# Below this many rated tickets the intervals are too wide to tell a supervisor anything.
MIN_OBSERVATIONS = 30


@dataclass(frozen=True)
class Driver:
    """One factor's effect on CSAT (points on the 1–5 scale per unit) with its confidence interval."""

    factor: str
    description: str
    coefficient: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class DriverReport:
    """The fitted regression: drivers, fit quality and how many rated tickets it rests on."""

    period: Period
    drivers: list[Driver]
    intercept: float
    r_squared: float
    observations: int
    confidence: float


def design_matrix(tickets: pd.DataFrame) -> pd.DataFrame:
    """The regression's inputs from ticket rows: service factors plus one indicator per non-web channel."""
    matrix = pd.DataFrame(
        {
            "first_response_hours": tickets["first_response_hours"],
            "resolution_hours": tickets["resolution_hours"],
            "transfers": tickets["transfer_count"].astype(float),
            "reopened": (tickets["reopen_count"] > 0).astype(float),
            "urgent_priority": (tickets["priority"] <= 2).astype(float),
        }
    )
    for channel in sorted(set(tickets["channel"]) - {"web"}):
        matrix[f"channel_{channel}"] = (tickets["channel"] == channel).astype(float)
    return matrix


def fit_ols(matrix: pd.DataFrame, target: pd.Series, confidence: float = 0.95) -> tuple[list[Driver], float, float]:
    """Least squares with classical standard errors; drivers, intercept and R², dropping columns that never vary."""
    matrix = matrix.loc[:, matrix.std() > 0]
    x = np.column_stack([np.ones(len(matrix)), matrix.to_numpy(float)])
    y = target.to_numpy(float)
    dof = len(y) - x.shape[1]
    if dof < 1:
        raise ValueError("not enough observations for the number of factors")
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residuals = y - x @ beta
    sigma2 = residuals @ residuals / dof
    std_errors = np.sqrt(np.diag(sigma2 * np.linalg.pinv(x.T @ x)))
    critical = stats.t.ppf(0.5 + confidence / 2, dof)
    p_values = 2 * stats.t.sf(np.abs(beta / std_errors), dof)
    r_squared = 1 - residuals @ residuals / np.sum((y - y.mean()) ** 2)
    drivers = [
        Driver(
            name,
            FACTORS.get(name, name.replace("channel_", "channel: ") + " (vs web)"),
            round(float(b), 4),
            round(float(se), 4),
            round(float(b - critical * se), 4),
            round(float(b + critical * se), 4),
            float(p),
        )
        for name, b, se, p in zip(matrix.columns, beta[1:], std_errors[1:], p_values[1:], strict=True)
    ]
    return drivers, float(beta[0]), float(r_squared)


def csat_drivers(session: Session, period: Period, confidence: float = 0.95) -> DriverReport | None:
    """The regression over resolved, rated tickets created in ``period``; None when too few are rated."""
    tickets = frames.tickets(session, period)
    rated = tickets.dropna(subset=["csat", "first_response_hours", "resolution_hours"])
    if len(rated) < MIN_OBSERVATIONS:
        return None
    drivers, intercept, r_squared = fit_ols(design_matrix(rated), rated["csat"], confidence)
    return DriverReport(period, drivers, round(intercept, 4), round(r_squared, 4), len(rated), confidence)
