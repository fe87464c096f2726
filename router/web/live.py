"""Server-sent events: the console's queues learn about new and changed tickets without reloading."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from router.bootstrap import Kefu
from router.crm.models import Ticket, User, utcnow
from router.routing.visibility import team_scope
from router.web.limits import StreamSlot, console_stream_slot
from router.web.security import CurrentUser, current_user, get_kefu
from router.web.views import ticket_summary, with_display_relations

router = APIRouter()

POLL_INTERVAL_S = 1.0
# Streams end after a while and the browser's EventSource reconnects, so an open console delays a server stop by at
# most this long (uvicorn waits for open responses; `--timeout-graceful-shutdown` cuts that shorter).
STREAM_LIFETIME_S = 30.0
BATCH_LIMIT = 200
# Reconnects look back a little, so a change committed while the browser was reconnecting is not missed.
RECONNECT_OVERLAP = timedelta(seconds=5)


def changed_tickets(kefu: Kefu, user_id: int, since: datetime) -> list[dict]:
    """Tickets the user may see that were created or changed at or after ``since`` (one cheap indexed query)."""
    with kefu.reader() as reader:
        user = reader.session.get(User, user_id)
        if user is None or not user.active:
            return []
        statement = select(Ticket).where(Ticket.updated_at >= since).order_by(Ticket.updated_at).limit(BATCH_LIMIT)
        scope = team_scope(user)
        if scope is not None:
            statement = statement.where(Ticket.team_id.in_(scope))
        now = utcnow()
        return [ticket_summary(ticket, now) for ticket in reader.session.scalars(with_display_relations(statement))]


async def _events(request: Request, kefu: Kefu, user: CurrentUser, since: datetime) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    sent_versions: dict[int, int] = {}
    deadline = asyncio.get_running_loop().time() + STREAM_LIFETIME_S
    while asyncio.get_running_loop().time() < deadline and not await request.is_disconnected():
        tickets = await run_in_threadpool(changed_tickets, kefu, user.id, since)
        for ticket in tickets:
            if sent_versions.get(ticket["id"]) == ticket["version"]:
                continue
            sent_versions[ticket["id"]] = ticket["version"]
            since = max(since, datetime.fromisoformat(ticket["updated_at"]))
            yield f"event: ticket\ndata: {json.dumps(ticket, ensure_ascii=False)}\n\n"
        yield ": keep-alive\n\n"
        await asyncio.sleep(POLL_INTERVAL_S)


@router.get("/console/stream", include_in_schema=False)
async def ticket_stream(
    request: Request,
    user: CurrentUser = Depends(current_user),
    kefu: Kefu = Depends(get_kefu),
    slot: StreamSlot = Depends(console_stream_slot),
) -> StreamingResponse:
    """``text/event-stream`` of ``ticket`` events (the queue row as JSON) for every visible ticket that changes."""
    since = utcnow() - RECONNECT_OVERLAP
    return StreamingResponse(
        slot.hold(_events(request, kefu, user, since)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
