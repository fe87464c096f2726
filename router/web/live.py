"""Server-sent events: the console's queues learn about new and changed tickets without reloading.

After every poll a stream sends its cursor (the event ``id``): the point a later stream must start from to miss no
change. The console page renders a first cursor with its rows and opens each stream from the last one it saw
(``?since=``, or ``Last-Event-ID`` from an ``EventSource``), so tickets that change while a page is cut off (the
agent's other tabs hold the stream slots, the session ended, the app restarts) arrive once it is back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import datetime, timedelta

from fastapi import APIRouter, Depends, Request
from sqlalchemy import and_, or_, select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
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
# Streams end after a while and the page opens the next one, so an open console delays a server stop by at most this
# long (uvicorn waits for open responses; `--timeout-graceful-shutdown` cuts that shorter).
STREAM_LIFETIME_S = 30.0
BATCH_LIMIT = 200
# How long a write transaction may take between stamping ``updated_at`` and committing, and still be streamed.
COMMIT_OVERLAP = timedelta(seconds=5)
# How far back a stream resumes; a page cut off for longer reloads, which costs less than replaying every change.
RESUME_WINDOW = timedelta(hours=1)


def page_cursor() -> str:
    """The cursor of a page about to read its rows: its stream starts there, so a change committing later is sent."""
    return (utcnow() - COMMIT_OVERLAP).isoformat()


def resume_point(cursor: str | None, now: datetime) -> datetime:
    """Where a stream starts: at ``cursor`` (from a page or an earlier stream), or, without one, about now.

    400 for a cursor that is none or lies in the future; 410 Gone for one older than ``RESUME_WINDOW`` (as for a
    Kubernetes watch's expired resource version), on which the page reloads. A 400 the page only retries: reloading
    would not mend its cursor, and a cursor ahead of this server's clock becomes good as the clock catches up.
    """
    if cursor is None:
        return now - COMMIT_OVERLAP
    try:
        point = datetime.fromisoformat(cursor)
    except ValueError:
        point = None
    if point is None or point.tzinfo is None:
        raise HTTPException(400, "since must be a cursor the console stream sent: an ISO 8601 time with its UTC offset")
    if point > now:
        raise HTTPException(400, "since is in the future")
    if point < now - RESUME_WINDOW:
        raise HTTPException(410, "since is too old to resume from; reload the page · 页面已过期，请刷新")
    return point


def stream_start(request: Request, since: str | None = None) -> datetime:
    """Dependency: the stream's start, from ``Last-Event-ID`` (an ``EventSource`` reconnecting) or ``?since=``.

    Checked before the stream takes its slot, so a refused request holds none.
    """
    return resume_point(request.headers.get("last-event-id", since), utcnow())


def changed_tickets(kefu: Kefu, user_id: int, since: datetime, after_id: int = 0) -> list[dict]:
    """Tickets the user may see that were created or changed at or after ``since`` (past ticket ``after_id`` among
    those stamped exactly then), oldest first, at most ``BATCH_LIMIT`` (one cheap indexed query)."""
    with kefu.reader() as reader:
        user = reader.session.get(User, user_id)
        if user is None or not user.active:
            return []
        later = or_(Ticket.updated_at > since, and_(Ticket.updated_at == since, Ticket.id > after_id))
        statement = select(Ticket).where(later).order_by(Ticket.updated_at, Ticket.id).limit(BATCH_LIMIT)
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
        # Past which ticket the cursor is among those stamped exactly ``since``: one routing batch stamps every ticket
        # it assigns alike, and there may be more of them than one read takes.
        self._after_id = 0
        self._sent_versions: dict[int, int] = {}

    def poll(self) -> list[dict]:
        """The visible tickets changed since the last poll that this stream has not sent in their current version."""
        started = utcnow()
        changed = changed_tickets(self._kefu, self._user_id, self.since, self._after_id)
        fresh = [ticket for ticket in changed if self._sent_versions.get(ticket["id"]) != ticket["version"]]
        self._sent_versions.update((ticket["id"], ticket["version"]) for ticket in fresh)
        # Everything stamped before ``started - COMMIT_OVERLAP`` had committed and was read, even when nothing changed
        # (so an idle stream's cursor moves on too), unless the batch was cut short: then up to its newest ticket.
        cursor = (started - COMMIT_OVERLAP, 0)
        if len(changed) == BATCH_LIMIT:
            cursor = min(cursor, (datetime.fromisoformat(changed[-1]["updated_at"]), changed[-1]["id"]))
        self.since, self._after_id = max((self.since, self._after_id), cursor)
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
            yield f"id: {feed.since.isoformat()}\n\n"  # no event, only the cursor; it keeps the connection alive too
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=max(0.0, min(poll_interval_s, deadline - clock.time())))
            await asyncio.sleep(max(0.0, polled_at + MIN_POLL_GAP_S - clock.time()))


@router.get("/console/stream", include_in_schema=False)
async def ticket_stream(
    request: Request,
    user: CurrentUser = Depends(current_user),
    kefu: Kefu = Depends(get_kefu),
    since: datetime = Depends(stream_start),
    slot: StreamSlot = Depends(console_stream_slot),
) -> StreamingResponse:
    """``text/event-stream`` of ``ticket`` events (the queue row as JSON) for every visible ticket that changes
    from ``since`` on, and after each poll the cursor to resume from."""
    wakeups: TicketWakeups = request.app.state.ticket_wakeups
    poll_interval_s = kefu.settings.console_safety_poll_s if wakeups.listens else POLL_INTERVAL_S
    return StreamingResponse(
        slot.hold(_events(request, TicketFeed(kefu, user.id, since), wakeups, poll_interval_s)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
