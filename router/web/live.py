"""Server-sent events: the console's queues learn about new and changed tickets without reloading."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress
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
from router.web.wakeups import TicketWakeups

router = APIRouter()

# Without LISTEN/NOTIFY (SQLite) the streams find changes by polling this often.
POLL_INTERVAL_S = 1.0
# However many tickets change, one stream reads them at most this often (each read is a query).
MIN_POLL_GAP_S = 0.25
# Streams end after a while and the browser's EventSource reconnects, so an open console delays a server stop by at
# most this long (uvicorn waits for open responses; `--timeout-graceful-shutdown` cuts that shorter).
STREAM_LIFETIME_S = 30.0
BATCH_LIMIT = 200
# Reconnects look back a little, so a change committed while the browser was reconnecting is not missed.
RECONNECT_OVERLAP = timedelta(seconds=5)
# How long a write transaction may take between stamping ``updated_at`` and committing, and still be streamed.
COMMIT_OVERLAP = timedelta(seconds=5)


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


class TicketFeed:
    """One stream's cursor over ticket changes: each change once, none lost to a transaction that commits late.

    ``updated_at`` is set when a writer changes the row, not when it commits, so with several writers a change can
    become visible after a newer one has been read. The cursor therefore never passes "query start minus
    ``COMMIT_OVERLAP``": changes are read again for that long, and the versions already sent are skipped.
    """

    def __init__(self, kefu: Kefu, user_id: int, since: datetime) -> None:
        self._kefu = kefu
        self._user_id = user_id
        self.since = since
        self._sent_versions: dict[int, int] = {}

    def poll(self) -> list[dict]:
        """The visible tickets changed since the last poll that this stream has not sent in their current version."""
        started = utcnow()
        fresh = []
        for ticket in changed_tickets(self._kefu, self._user_id, self.since):
            if self._sent_versions.get(ticket["id"]) != ticket["version"]:
                self._sent_versions[ticket["id"]] = ticket["version"]
                fresh.append(ticket)
            newest = datetime.fromisoformat(ticket["updated_at"])
            self.since = max(self.since, min(newest, started - COMMIT_OVERLAP))
        return fresh


async def _events(
    request: Request, feed: TicketFeed, wakeups: TicketWakeups, poll_interval_s: float
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    clock = asyncio.get_running_loop()
    deadline = clock.time() + STREAM_LIFETIME_S
    with wakeups.subscription() as woken:
        while clock.time() < deadline and not await request.is_disconnected():
            polled_at = clock.time()
            woken.clear()  # before reading: a change committed during the read wakes the next one
            for ticket in await run_in_threadpool(feed.poll):
                yield f"event: ticket\ndata: {json.dumps(ticket, ensure_ascii=False)}\n\n"
            yield ": keep-alive\n\n"
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=max(0.0, min(poll_interval_s, deadline - clock.time())))
            await asyncio.sleep(max(0.0, polled_at + MIN_POLL_GAP_S - clock.time()))


@router.get("/console/stream", include_in_schema=False)
async def ticket_stream(
    request: Request,
    user: CurrentUser = Depends(current_user),
    kefu: Kefu = Depends(get_kefu),
    slot: StreamSlot = Depends(console_stream_slot),
) -> StreamingResponse:
    """``text/event-stream`` of ``ticket`` events (the queue row as JSON) for every visible ticket that changes."""
    since = utcnow() - RECONNECT_OVERLAP
    wakeups: TicketWakeups = request.app.state.ticket_wakeups
    poll_interval_s = kefu.settings.console_safety_poll_s if wakeups.listens else POLL_INTERVAL_S
    return StreamingResponse(
        slot.hold(_events(request, TicketFeed(kefu, user.id, since), wakeups, poll_interval_s)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
