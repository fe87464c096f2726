"""The JSON API under ``/api``: the console's reads and actions for integrations (OpenAPI at ``/api/docs``).

Authenticate with ``Authorization: Bearer <token>`` from ``POST /api/tokens``, or with the console's session cookie
plus the ``X-CSRF-Token`` header (the page's ``<meta name="csrf-token">``) on every state change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.responses import JSONResponse

from router.bootstrap import Kefu
from router.crm.models import Agent, Presence, Role, TicketStatus, User
from router.crm.unit_of_work import ReadOnlyUnitOfWork, UnitOfWork
from router.errors import Forbidden, InvalidInput
from router.routing.policy import MAX_NOTE_CHARS, MAX_REPLY_CHARS
from router.routing.presence import set_presence
from router.routing.visibility import visible_tickets
from router.web import workflow
from router.web.security import CurrentUser, current_user, get_kefu, get_reader, get_uow, verify_csrf
from router.web.views import acting_user, customer_profile, summaries, ticket_page, ticket_summary, visible_ticket

router = APIRouter(prefix="/api", tags=["tickets"], dependencies=[Depends(verify_csrf)])


class ReplyIn(BaseModel):
    text: str = Field(..., max_length=MAX_REPLY_CHARS)
    version: int | None = Field(None, description="The ticket version you saw; a mismatch answers 409.")


class NoteIn(BaseModel):
    text: str = Field(..., max_length=MAX_NOTE_CHARS)


class TransferIn(BaseModel):
    team_id: int | None = None
    agent_id: int | None = None
    version: int | None = None


class ResolveIn(BaseModel):
    version: int | None = None
    summary: str = Field("", max_length=2000)


class PresenceIn(BaseModel):
    presence: Presence


class OutcomeOut(BaseModel):
    ticket_id: int
    message: str
    delivery: str = ""


def _statuses(status: str | None) -> list[TicketStatus] | None:
    if not status:
        return None
    try:
        return [TicketStatus(part.strip()) for part in status.split(",")]
    except ValueError as error:
        raise InvalidInput(f"unknown status in {status!r}; use {', '.join(s.value for s in TicketStatus)}") from error


@router.get("/tickets")
def list_tickets(
    status: str | None = None,
    team_id: int | None = None,
    mine: bool = False,
    limit: int = 100,
    user: CurrentUser = Depends(current_user),
    reader: ReadOnlyUnitOfWork = Depends(get_reader),
) -> JSONResponse:
    """Tickets you may see, in queue order; filter by ``status`` (comma-separated), ``team_id`` or ``mine``."""
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be 1..500")
    tickets = visible_tickets(
        reader.session,
        acting_user(reader.session, user),
        statuses=_statuses(status),
        team_id=team_id,
        assignee_id=user.agent_id if mine else None,
        limit=limit,
    )
    # Already JSON-ready: skipping FastAPI's per-field re-encoding halves the time of a 200-row answer.
    return JSONResponse(summaries(reader.session, tickets))


@router.get("/tickets/{ticket_id}")
def ticket_detail(
    ticket_id: int, user: CurrentUser = Depends(current_user), reader: ReadOnlyUnitOfWork = Depends(get_reader)
) -> dict[str, Any]:
    """One ticket with its transcript, notes, audit trail and customer."""
    ticket = visible_ticket(reader.session, acting_user(reader.session, user), ticket_id)
    page = ticket_page(reader.session, ticket)
    return {
        **ticket_summary(ticket),
        "description": ticket.description,
        "order_number": ticket.order_number,
        "customer_profile": {
            key: value for key, value in customer_profile(reader.session, ticket.customer_id).items() if key != "since"
        },
        "transcript": [
            {
                "id": turn.id,
                "speaker": turn.speaker.value,
                "text": turn.text,
                "intent": turn.intent,
                "delivery": turn.delivery,
                "created_at": turn.created_at.isoformat(),
            }
            for turn in page.transcript
        ],
        "notes": [
            {
                "text": note.data.get("text", ""),
                "by": page.actors.get(note.actor_user_id),
                "at": note.created_at.isoformat(),
            }
            for note in page.notes
        ],
        "events": [
            {"kind": event.kind.value, "by": page.actors.get(event.actor_user_id), "at": event.created_at.isoformat()}
            for event in page.events
        ],
    }


@router.post("/tickets/{ticket_id}/reply", response_model=OutcomeOut)
async def reply(
    ticket_id: int, body: ReplyIn, user: CurrentUser = Depends(current_user), kefu: Kefu = Depends(get_kefu)
) -> OutcomeOut:
    """Reply to the customer on their channel (409 if the ticket is closed or changed since ``version``)."""
    outcome = await workflow.reply(kefu, user, ticket_id, body.text, body.version)
    return OutcomeOut(**outcome.__dict__)


@router.post("/tickets/{ticket_id}/notes", status_code=201)
def add_note(
    ticket_id: int, body: NoteIn, user: CurrentUser = Depends(current_user), kefu: Kefu = Depends(get_kefu)
) -> dict[str, Any]:
    """Add an internal note."""
    event = workflow.add_note(kefu, user, ticket_id, body.text)
    return {"id": event.id, "ticket_id": ticket_id, "text": event.data.get("text", "")}


@router.post("/tickets/{ticket_id}/transfer", response_model=OutcomeOut)
def transfer(
    ticket_id: int, body: TransferIn, user: CurrentUser = Depends(current_user), kefu: Kefu = Depends(get_kefu)
) -> OutcomeOut:
    """Transfer to a team and/or an agent."""
    outcome = workflow.transfer(kefu, user, ticket_id, body.team_id, body.agent_id, body.version)
    return OutcomeOut(**outcome.__dict__)


@router.post("/tickets/{ticket_id}/resolve", response_model=OutcomeOut)
def resolve(
    ticket_id: int, body: ResolveIn, user: CurrentUser = Depends(current_user), kefu: Kefu = Depends(get_kefu)
) -> OutcomeOut:
    """Resolve (409 if already resolved or changed since ``version``); the bot then asks for a rating."""
    outcome = workflow.resolve(kefu, user, ticket_id, body.version, body.summary)
    return OutcomeOut(**outcome.__dict__)


@router.get("/agents", tags=["agents"])
def list_agents(
    user: CurrentUser = Depends(current_user), reader: ReadOnlyUnitOfWork = Depends(get_reader)
) -> list[dict[str, Any]]:
    """Agents with presence and load: everyone for supervisors, your teams' agents for agents."""
    agents = reader.session.scalars(
        select(Agent)
        .join(User)
        .where(User.active.is_(True))
        .options(selectinload(Agent.user), selectinload(Agent.teams))
    ).all()
    return [
        {
            "id": agent.id,
            "name": agent.user.display_name,
            "presence": agent.presence.value,
            "open_tickets": agent.open_tickets,
            "capacity": agent.capacity,
            "teams": [team.name for team in agent.teams],
            "last_heartbeat_at": agent.last_heartbeat_at.isoformat() if agent.last_heartbeat_at else None,
        }
        for agent in agents
        if user.is_supervisor or user.team_ids & {team.id for team in agent.teams}
    ]


@router.put("/agents/me/presence", tags=["agents"])
def put_presence(
    body: PresenceIn, user: CurrentUser = Depends(current_user), uow: UnitOfWork = Depends(get_uow)
) -> dict[str, str]:
    """Set your own presence (online pulls waiting tickets, offline hands unstarted ones back)."""
    if user.agent_id is None or user.role is not Role.agent:
        raise Forbidden("only agents have a presence")
    agent = set_presence(uow.session, user.agent_id, body.presence)
    uow.commit()
    return {"presence": agent.presence.value}
