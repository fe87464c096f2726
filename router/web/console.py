"""The agent console's pages: my queue, team queue, the ticket page, and the presence toggle with its heartbeat."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, RedirectResponse, Response

from router.bootstrap import Kefu
from router.crm.models import OPEN_STATUSES, Agent, Presence, TicketStatus, User
from router.crm.unit_of_work import ReadOnlyUnitOfWork, UnitOfWork
from router.errors import Forbidden
from router.routing.presence import heartbeat, set_presence
from router.routing.visibility import visible_tickets
from router.web.live import page_cursor
from router.web.security import CurrentUser, current_user, get_kefu, get_reader, get_uow, verify_csrf
from router.web.templating import render
from router.web.views import (
    acting_user,
    category_choices,
    customer_profile,
    summaries,
    ticket_page,
    ticket_summary,
    visible_ticket,
)

router = APIRouter(prefix="/console", include_in_schema=False)

QUEUE_TABS = ("mine", "team", "resolved")


def queue_rows(session: Session, user: User, agent_id: int | None, tab: str) -> list[dict]:
    """The rows of one console tab, in queue order (priority, then SLA due time)."""
    if tab == "mine":
        if agent_id is None:
            return []
        tickets = visible_tickets(session, user, statuses=OPEN_STATUSES, assignee_id=agent_id)
    elif tab == "resolved":
        tickets = visible_tickets(session, user, statuses=(TicketStatus.resolved, TicketStatus.closed), limit=100)
    else:
        tickets = visible_tickets(session, user, statuses=OPEN_STATUSES)
    return summaries(session, tickets)


@router.get("")
def queues(
    request: Request,
    tab: str = "",
    user: CurrentUser = Depends(current_user),
    reader: ReadOnlyUnitOfWork = Depends(get_reader),
) -> Response:
    """My queue / team queue / recently resolved, live-updated over ``/console/stream``."""
    since = page_cursor()  # taken before anything is read: the page's live stream goes on from there
    tab = tab if tab in QUEUE_TABS else ("mine" if user.agent_id else "team")
    me = acting_user(reader.session, user)
    agent = reader.session.get(Agent, user.agent_id) if user.agent_id else None
    return render(
        request,
        "console.html",
        {
            "tab": tab,
            "since": since,
            "rows": queue_rows(reader.session, me, user.agent_id, tab),
            "agent_load": (agent.open_tickets, agent.capacity) if agent else None,
        },
    )


@router.get("/tickets/{ticket_id}")
def ticket_detail(
    request: Request,
    ticket_id: int,
    notice: str = "",
    user: CurrentUser = Depends(current_user),
    reader: ReadOnlyUnitOfWork = Depends(get_reader),
    kefu: Kefu = Depends(get_kefu),
) -> Response:
    """The ticket page: transcript, customer, notes, audit trail and every action an agent can take."""
    me = acting_user(reader.session, user)
    ticket = visible_ticket(reader.session, me, ticket_id)
    return render(
        request,
        "ticket.html",
        {
            "ticket": ticket,
            "summary": ticket_summary(ticket),
            "page": ticket_page(reader.session, ticket),
            "customer": customer_profile(reader.session, ticket.customer_id),
            "notice": notice[:200],
            "is_open": ticket.status in OPEN_STATUSES,
            "categories": category_choices(kefu.settings.data_dir),
        },
    )


def _own_agent_id(user: CurrentUser) -> int:
    if user.agent_id is None:
        raise Forbidden("only agents have a presence")
    return user.agent_id


@router.post("/presence", dependencies=[Depends(verify_csrf)])
def change_presence(
    request: Request,
    presence: str = Form(...),
    user: CurrentUser = Depends(current_user),
    uow: UnitOfWork = Depends(get_uow),
) -> Response:
    """Go online / away / offline (online pulls waiting tickets, offline hands unstarted ones back)."""
    agent = set_presence(uow.session, _own_agent_id(user), presence)
    uow.commit()
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"presence": agent.presence.value})
    return RedirectResponse("/console", status_code=303)


@router.post("/heartbeat", dependencies=[Depends(verify_csrf)])
def console_heartbeat(user: CurrentUser = Depends(current_user), uow: UnitOfWork = Depends(get_uow)) -> JSONResponse:
    """The open console says it is still there every 30 s, so the worker does not requeue this agent's tickets."""
    agent = heartbeat(uow.session, _own_agent_id(user))
    uow.commit()
    return JSONResponse({"presence": Presence(agent.presence).value, "at": agent.last_heartbeat_at.isoformat()})
