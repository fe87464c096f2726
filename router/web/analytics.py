"""Analytics pages for supervisors and admins (tables + charts, CSV/PNG export) and similar tickets for agents."""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import RedirectResponse, Response

from router.analytics import export
from router.analytics.period import MAX_PERIOD_DAYS, Period
from router.crm.unit_of_work import ReadOnlyUnitOfWork
from router.errors import NotFound
from router.routing.visibility import team_scope
from router.web.security import CurrentUser, current_user, get_reader, require_role
from router.web.templating import render
from router.web.views import acting_user, visible_ticket

if TYPE_CHECKING:
    from router.analytics.report import AnalysisResult

# The analyses (pandas, scikit-learn, SciPy, gensim, matplotlib: seconds of imports) load on the first analytics
# request, not at every start of the web app, whose other pages never need them.

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["tickets"])
supervisors = require_role("supervisor", "admin")
TITLES = {
    "kpis": "指标 KPIs",
    "topics": "投诉主题 Topics",
    "csat_drivers": "满意度驱动 CSAT drivers",
    "segments": "客户分群 Segments",
    "rules": "关联规则 Rules",
    "staffing": "排班 Staffing",
}
Days = Query(30, ge=1, le=MAX_PERIOD_DAYS, description="Analyse the last DAYS days.")


def _result(reader: ReadOnlyUnitOfWork, name: str, days: int) -> AnalysisResult:
    from router.analytics.report import build

    return build(reader.session, name, Period.last(days))


def _filename(result: AnalysisResult, extension: str) -> str:
    return f"kefu-{result.name}-{result.period.start:%Y%m%d}-{result.period.end:%Y%m%d}.{extension}"


@router.get("/analytics")
def analytics_home(_user: CurrentUser = Depends(supervisors)) -> RedirectResponse:
    """The first analysis a supervisor wants: the KPIs."""
    return RedirectResponse("/analytics/kpis", status_code=303)


# The .png/.csv routes come before the page route, whose {name} would otherwise swallow "kpis.png".
@router.get("/analytics/{name}.png")
def analytics_chart(
    name: str,
    days: int = Days,
    _user: CurrentUser = Depends(supervisors),
    reader: ReadOnlyUnitOfWork = Depends(get_reader),
) -> Response:
    """The analysis's chart as a PNG download."""
    result = _result(reader, name, days)
    headers = {"Content-Disposition": f'attachment; filename="{_filename(result, "png")}"'}
    return Response(result.chart(), media_type="image/png", headers=headers)


@router.get("/analytics/{name}.csv")
def analytics_csv(
    name: str,
    days: int = Days,
    table: int = Query(0, ge=0, le=10, description="0: the main table; 1… the page's further tables."),
    _user: CurrentUser = Depends(supervisors),
    reader: ReadOnlyUnitOfWork = Depends(get_reader),
) -> Response:
    """One of the analysis's tables as a CSV download (UTF-8 with BOM so spreadsheet programs read Chinese)."""
    result = _result(reader, name, days)
    tables = [result.rows, *(extra.rows for extra in result.tables)]
    if table >= len(tables):
        raise NotFound(f"{name} has {len(tables)} tables")
    headers = {"Content-Disposition": f'attachment; filename="{_filename(result, "csv")}"'}
    return Response("\ufeff" + export.to_csv(tables[table]), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/analytics/{name}")
def analytics_page(
    request: Request,
    name: str,
    days: int = Days,
    _user: CurrentUser = Depends(supervisors),
    reader: ReadOnlyUnitOfWork = Depends(get_reader),
) -> Response:
    """One analysis as a page: its chart, its tables, and links to export both."""
    from router.analytics import charts

    result = _result(reader, name, days)
    # The chart is inlined so the page computes the analysis once; the PNG route serves the download.
    chart = base64.b64encode(result.chart()).decode("ascii")
    context: dict[str, Any] = {
        "result": result,
        "chart": chart,
        "days": days,
        "titles": TITLES,
        "cjk_font": charts.has_cjk_font(),
    }
    return render(request, "analytics.html", context)


@api_router.get("/tickets/{ticket_id}/similar")
def similar(
    ticket_id: int,
    k: int = Query(5, ge=1, le=50),
    user: CurrentUser = Depends(current_user),
    reader: ReadOnlyUnitOfWork = Depends(get_reader),
) -> list[dict[str, Any]]:
    """Earlier resolved tickets that read like this one, with how they were resolved (the agent console shows them)."""
    from router.analytics.similar import similar_tickets

    acting = acting_user(reader.session, user)
    visible_ticket(reader.session, acting, ticket_id)  # 404/403 before revealing anything
    return [
        {**asdict(found), "resolved_at": found.resolved_at.isoformat() if found.resolved_at else None}
        for found in similar_tickets(reader.session, ticket_id, k, visible_teams=team_scope(acting))
    ]
