"""The customer web chat: the page, its history and the live stream of bot and agent turns from the CRM.

The page talks to Rasa's ``webchat`` channel for the customer's own messages (``bot/channels/webchat.py``) and to
this router for everything else. The browser's session id (a random UUID in ``localStorage``) is the customer's
identity and the only key to their history, as in any anonymous chat widget.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.sql import Select
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse

from router.bootstrap import Kefu
from router.crm.conversations import sender_id_for
from router.crm.models import Channel, Conversation, Interaction, Speaker
from router.errors import InvalidInput
from router.web.limits import Limits, client_ip, get_limits
from router.web.security import get_kefu
from router.web.templating import templates

router = APIRouter()

POLL_INTERVAL_S = 0.5
# The stream ends now and then and EventSource reconnects with Last-Event-ID: nothing is missed, nothing held long.
STREAM_LIFETIME_S = 120.0
HISTORY_LIMIT = 200
BATCH_LIMIT = 100
_SHOWN_SPEAKERS = (Speaker.customer, Speaker.bot, Speaker.agent)
_PUSHED_SPEAKERS = (Speaker.bot, Speaker.agent)
# The widget is embedded on other sites: its JSON endpoints answer any origin (they need no cookie).
_OPEN_CORS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}


def web_sender_id(session: str) -> str:
    """``web:<uuid>`` for a browser session id, refusing anything that is not a UUID."""
    try:
        return sender_id_for(Channel.web, str(uuid.UUID(session)))
    except ValueError as error:
        raise InvalidInput("session must be a UUID") from error


def _turn(interaction: Interaction) -> dict:
    return {
        "id": interaction.id,
        "speaker": interaction.speaker.value,
        "text": interaction.text,
        "buttons": interaction.buttons or [],
        "at": interaction.created_at.isoformat(),
    }


def _turns_query(sender_id: str, speakers: tuple[Speaker, ...]) -> Select:
    return (
        select(Interaction)
        .join(Conversation, Conversation.id == Interaction.conversation_id)
        .where(Conversation.sender_id == sender_id, Interaction.speaker.in_(speakers))
    )


def chat_history(kefu: Kefu, sender_id: str) -> list[dict]:
    """The customer's last turns, oldest first, so a reloaded page shows the conversation it had."""
    with kefu.reader() as reader:
        rows = reader.session.scalars(
            _turns_query(sender_id, _SHOWN_SPEAKERS).order_by(Interaction.id.desc()).limit(HISTORY_LIMIT)
        ).all()
        return [_turn(row) for row in reversed(rows)]


def turns_after(kefu: Kefu, sender_id: str, after_id: int) -> list[dict]:
    """Bot and agent turns newer than ``after_id``: what the page has not been shown yet."""
    with kefu.reader() as reader:
        rows = reader.session.scalars(
            _turns_query(sender_id, _PUSHED_SPEAKERS)
            .where(Interaction.id > after_id)
            .order_by(Interaction.id)
            .limit(BATCH_LIMIT)
        ).all()
        return [_turn(row) for row in rows]


@router.get("/chat", include_in_schema=False)
def chat_page(request: Request, embed: bool = False, kefu: Kefu = Depends(get_kefu)) -> HTMLResponse:
    """The chat page customers open (``?embed=1`` inside the script-tag widget's frame)."""
    context = {"rasa_url": kefu.settings.rasa_url.rstrip("/"), "embed": embed}
    return templates.TemplateResponse(request, "webchat.html", context)


@router.get("/webchat/history")
def history(
    request: Request,
    session: str = Query(..., max_length=64),
    kefu: Kefu = Depends(get_kefu),
    limits: Limits = Depends(get_limits),
) -> JSONResponse:
    """JSON list of the session's turns (customer, bot, agent), oldest first."""
    sender_id = web_sender_id(session)
    limits.new_webchat_session(kefu, client_ip(request), sender_id)
    return JSONResponse({"turns": chat_history(kefu, sender_id)}, headers=_OPEN_CORS)


async def _stream(request: Request, kefu: Kefu, sender_id: str, after_id: int) -> AsyncIterator[str]:
    yield "retry: 1500\n\n"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STREAM_LIFETIME_S
    while loop.time() < deadline and not await request.is_disconnected():
        for turn in await run_in_threadpool(turns_after, kefu, sender_id, after_id):
            after_id = turn["id"]
            yield f"id: {after_id}\nevent: turn\ndata: {json.dumps(turn, ensure_ascii=False)}\n\n"
        yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_INTERVAL_S)


@router.get("/webchat/events")
async def events(
    request: Request,
    session: str = Query(..., max_length=64),
    after: int = Query(0, ge=0),
    kefu: Kefu = Depends(get_kefu),
    limits: Limits = Depends(get_limits),
) -> StreamingResponse:
    """``text/event-stream`` of ``turn`` events: bot and agent turns after ``after`` (or Last-Event-ID)."""
    sender_id = web_sender_id(session)
    last_event_id = request.headers.get("last-event-id", "")
    after_id = max(after, int(last_event_id)) if last_event_id.isdigit() else after
    await run_in_threadpool(limits.new_webchat_session, kefu, client_ip(request), sender_id)
    slot = await run_in_threadpool(limits.open_stream, client_ip(request), sender_id)
    return StreamingResponse(
        slot.hold(_stream(request, kefu, sender_id, after_id)),
        media_type="text/event-stream",
        headers={**_OPEN_CORS, "X-Accel-Buffering": "no"},
    )
