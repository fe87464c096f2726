"""The Jinja2 environment every page renders with (autoescape on, CSRF token and user in every template)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from router.crm.models import utcnow
from router.routing.sla import FIRST_RESPONSE, RESOLUTION
from router.web.security import csrf_token

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
# What an SLA countdown runs to (``sla.current_deadline``), in the console's two languages.
DEADLINE_LABELS = {FIRST_RESPONSE: "首次响应 First response", RESOLUTION: "解决 Resolution"}


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _short_time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "—"


templates.env.filters["iso"] = _iso
templates.env.filters["short_time"] = _short_time
templates.env.globals["deadline_labels"] = DEADLINE_LABELS


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """A page from ``templates/``, with the CSRF token, the user (if any) and the clock the countdowns start from."""
    full_context = {
        "csrf_token": csrf_token(request),
        "user": getattr(request.state, "user", None),
        "now": utcnow(),
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, full_context, status_code=status_code)
