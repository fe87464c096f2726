"""The ticket page's forms: reply, note, transfer, resolve, reopen, merge (each redirects back with a notice)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form
from starlette.responses import RedirectResponse

from router.bootstrap import Kefu
from router.errors import InvalidInput
from router.web import workflow
from router.web.security import CurrentUser, current_user, get_kefu, verify_csrf

router = APIRouter(prefix="/console/tickets/{ticket_id}", include_in_schema=False, dependencies=[Depends(verify_csrf)])


def _back(ticket_id: int, notice: str) -> RedirectResponse:
    return RedirectResponse(f"/console/tickets/{ticket_id}?notice={quote(notice)}", status_code=303)


def _optional_id(value: str, what: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit():
        raise InvalidInput(f"{what} must be a number")
    return int(value)


@router.post("/reply")
async def reply_form(
    ticket_id: int,
    text: str = Form(""),
    version: int | None = Form(None),
    user: CurrentUser = Depends(current_user),
    kefu: Kefu = Depends(get_kefu),
) -> RedirectResponse:
    """Send the reply box to the customer."""
    outcome = await workflow.reply(kefu, user, ticket_id, text, version)
    return _back(ticket_id, outcome.message)


@router.post("/notes")
def note_form(
    ticket_id: int, text: str = Form(""), user: CurrentUser = Depends(current_user), kefu: Kefu = Depends(get_kefu)
) -> RedirectResponse:
    """Add an internal note."""
    workflow.add_note(kefu, user, ticket_id, text)
    return _back(ticket_id, "备注已添加 Note added")


@router.post("/transfer")
def transfer_form(
    ticket_id: int,
    team_id: str = Form(""),
    agent_id: str = Form(""),
    version: int | None = Form(None),
    user: CurrentUser = Depends(current_user),
    kefu: Kefu = Depends(get_kefu),
) -> RedirectResponse:
    """Transfer to the chosen team and/or agent."""
    outcome = workflow.transfer(
        kefu, user, ticket_id, _optional_id(team_id, "team"), _optional_id(agent_id, "agent"), version
    )
    return _back(ticket_id, outcome.message)


@router.post("/resolve")
def resolve_form(
    ticket_id: int,
    version: int | None = Form(None),
    user: CurrentUser = Depends(current_user),
    kefu: Kefu = Depends(get_kefu),
) -> RedirectResponse:
    """Resolve the ticket (the bot then asks the customer for a rating)."""
    return _back(ticket_id, workflow.resolve(kefu, user, ticket_id, version).message)


@router.post("/reopen")
def reopen_form(
    ticket_id: int,
    version: int | None = Form(None),
    user: CurrentUser = Depends(current_user),
    kefu: Kefu = Depends(get_kefu),
) -> RedirectResponse:
    """Reopen a resolved ticket."""
    return _back(ticket_id, workflow.reopen(kefu, user, ticket_id, version).message)


@router.post("/merge")
def merge_form(
    ticket_id: int, into: str = Form(""), user: CurrentUser = Depends(current_user), kefu: Kefu = Depends(get_kefu)
) -> RedirectResponse:
    """Merge this ticket into another of the same customer."""
    outcome = workflow.merge(kefu, user, ticket_id, into)
    return _back(outcome.ticket_id, outcome.message)
