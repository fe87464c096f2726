"""Flood limits of the public web app: 429 with ``Retry-After`` for too many requests, 413 for too large a body.

Every limit is one primitive, a *bounded set*: at most N members under a key, each member expiring after a while.

- a rate (N messages a minute) admits each request as a new member that lives one window (a sliding-window log);
- new web chat customers from one IP admit each unknown browser id as a member for one window, so a flood of fresh
  ids is refused while the same id, sent again, costs nothing;
- open event streams admit each stream as a member until it closes (or, should its process die, its lease ends).

The sets live in this process for the single-process ``make run``, and in Redis sorted sets when ``KEFU_REDIS_URL``
is set, so that every web app process counts against the same limits. (The ``limits`` package does rates only, and
its releases that install beside Rasa 3.6's ``packaging<21`` pin are years old.)
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import anyio
import redis
from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.bootstrap import Kefu
from router.crm.conversations import customer_id_of
from router.errors import KefuError
from router.settings import Settings
from router.web.error_handlers import error_response
from router.web.security import CurrentUser, current_user

log = logging.getLogger(__name__)

KEY_PREFIX = "kefu:limit:"
MINUTE_S = 60.0
HOUR_S = 3600.0
# Longer than any event stream lives (they end and reconnect every 30–120 s), so a slot whose process died frees
# itself soon after; a stream that ends normally frees its slot at once.
STREAM_LEASE_S = 180.0


class RateLimited(KefuError):
    """Too many requests of one kind from one client (HTTP 429 with ``Retry-After``)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, math.ceil(retry_after_s))


class BoundedSets(Protocol):
    """Sets of at most ``limit`` members whose members expire ``ttl_s`` after they were admitted."""

    def admit(self, key: str, member: str, limit: int, ttl_s: float) -> float | None:
        """Admit ``member`` (a member already in the set is admitted again); None, or seconds until a slot frees."""

    def release(self, key: str, member: str) -> None:
        """Take ``member`` out of the set before it expires."""


class MemoryBoundedSets:
    """The sets of one process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._sets: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def admit(self, key: str, member: str, limit: int, ttl_s: float) -> float | None:
        """See ``BoundedSets.admit``."""
        now = self._clock()
        with self._lock:
            members = {name: expiry for name, expiry in self._sets.get(key, {}).items() if expiry > now}
            self._sets[key] = members
            if member in members:
                return None
            if len(members) >= limit:
                return min(members.values()) - now
            members[member] = now + ttl_s
            return None

    def release(self, key: str, member: str) -> None:
        """See ``BoundedSets.release``."""
        with self._lock:
            members = self._sets.get(key)
            if members is not None:
                members.pop(member, None)
                if not members:
                    del self._sets[key]


# One round trip, atomic: drop expired members, admit if the member is there or there is room, else say how long
# until the oldest member expires. Scores are expiry times.
_ADMIT_SCRIPT = """
local key, member = KEYS[1], ARGV[1]
local limit, now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZSCORE', key, member) then
  return ''
end
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) - now)
end
redis.call('ZADD', key, now + ttl, member)
redis.call('PEXPIRE', key, math.ceil(ttl * 1000))
return ''
"""


class RedisBoundedSets:
    """The sets as Redis sorted sets, shared by every process that uses the same Redis."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._admit = self._client.register_script(_ADMIT_SCRIPT)

    def admit(self, key: str, member: str, limit: int, ttl_s: float) -> float | None:
        """See ``BoundedSets.admit``."""
        wait = self._admit(keys=[key], args=[member, limit, time.time(), ttl_s])
        return float(wait) if wait else None

    def release(self, key: str, member: str) -> None:
        """See ``BoundedSets.release``."""
        self._client.zrem(key, member)


def bounded_sets(settings: Settings) -> BoundedSets:
    """Redis when ``KEFU_REDIS_URL`` is set, else this process's memory."""
    return RedisBoundedSets(settings.redis_url) if settings.redis_url else MemoryBoundedSets()


@dataclass
class StreamSlot:
    """One open event stream's place under its client's limits; freed when the stream ends."""

    limits: Limits
    keys: tuple[str, ...]
    member: str

    async def hold(self, stream: AsyncIterator[str]) -> AsyncIterator[str]:
        """``stream``, freeing the slot when it ends, fails or the browser goes away."""
        try:
            async for chunk in stream:
                yield chunk
        finally:
            # Shielded: when the browser goes away the stream is cancelled, and the slot must be freed all the same.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.limits.release, self.keys, self.member)


class Limits:
    """The web app's flood limits, read from the settings (``KEFU_WEBCHAT_*``, ``KEFU_EVENT_STREAMS_*``)."""

    def __init__(self, sets: BoundedSets, settings: Settings) -> None:
        self.sets = sets
        self.settings = settings

    def _admit(self, key: str, member: str, limit: int, ttl_s: float, refusal: str) -> None:
        try:
            wait = self.sets.admit(KEY_PREFIX + key, member, limit, ttl_s)
        except redis.RedisError as error:
            # A limiter outage must not take the customers' chat down with it: serve, and say so loudly.
            log.error("rate limiter unavailable, request let through: %s", error)
            return
        if wait is not None:
            raise RateLimited(refusal, wait)

    def release(self, keys: tuple[str, ...], member: str) -> None:
        """Free ``member``'s place under each of ``keys``."""
        for key in keys:
            try:
                self.sets.release(KEY_PREFIX + key, member)
            except redis.RedisError as error:
                log.error("rate limiter unavailable, slot left to expire: %s", error)

    def _hit(self, key: str, per_minute: int, refusal: str) -> None:
        self._admit(key, uuid.uuid4().hex, per_minute, MINUTE_S, refusal)

    def new_webchat_session(self, kefu: Kefu, client_ip: str, sender_id: str) -> None:
        """Admit a web chat browser id; ids the CRM does not know yet count against the IP's hourly budget."""
        with kefu.reader() as reader:
            if customer_id_of(reader.session, sender_id) is not None:
                return
        self._admit(
            f"webchat-new:{client_ip}",
            sender_id,
            self.settings.webchat_new_sessions_per_hour,
            HOUR_S,
            "too many new chats from your network; please wait and try again · 新会话过多，请稍后再试",
        )

    def webchat_message(self, kefu: Kefu, client_ip: str, sender_id: str) -> None:
        """Admit a customer's message: per-IP and per-customer rates, and the new-customer budget."""
        refusal = "you are sending messages too fast; please wait a moment · 发送过于频繁，请稍候"
        self._hit(f"webchat-ip:{client_ip}", self.settings.webchat_ip_messages_per_minute, refusal)
        self.new_webchat_session(kefu, client_ip, sender_id)
        self._hit(f"webchat-customer:{sender_id}", self.settings.webchat_messages_per_minute, refusal)

    def open_stream(self, client_ip: str, owner: str) -> StreamSlot:
        """A slot for one more live event stream of ``owner`` (a customer or a user) from ``client_ip``."""
        refusal = "too many live connections open; close other tabs and reload · 打开的实时连接过多"
        member = uuid.uuid4().hex
        ip_key, owner_key = f"streams-ip:{client_ip}", f"streams-owner:{owner}"
        self._admit(ip_key, member, self.settings.event_streams_per_ip, STREAM_LEASE_S, refusal)
        try:
            self._admit(owner_key, member, self.settings.event_streams_per_client, STREAM_LEASE_S, refusal)
        except RateLimited:
            self.release((ip_key,), member)
            raise
        return StreamSlot(self, (ip_key, owner_key), member)


def get_limits(request: Request) -> Limits:
    """The process's limits, set on the app by ``install_limits``."""
    return request.app.state.limits


def client_ip(request: Request) -> str:
    """The caller's address (the one a trusted proxy reports, see ``headers.install_security_headers``)."""
    return request.client.host if request.client else "unknown"


def console_stream_slot(
    request: Request, user: CurrentUser = Depends(current_user), limits: Limits = Depends(get_limits)
) -> StreamSlot:
    """Dependency of the console's event stream: a slot per user and per IP (hold it with ``slot.hold``)."""
    return limits.open_stream(client_ip(request), f"user:{user.id}")


class BodyTooLarge(HTTPException):
    """A request body over ``KEFU_MAX_BODY_BYTES`` (HTTP 413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body too large: at most {max_bytes} bytes · 请求内容过大")


class BodySizeLimit:
    """ASGI middleware refusing bodies over ``max_bytes``: by their Content-Length before reading any of them, and
    while reading one sent in chunks, as soon as it passes the limit. Nothing of a refused body reaches a route.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Routes reading the body get it as an HTTP error: the app's handlers answer 413.
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_bytes)
        path, accept = scope["path"], dict(scope["headers"]).get(b"accept", b"")
        response: Response
        if path.startswith("/api") or b"application/json" in accept:
            response = JSONResponse({"error": error.detail, "status": 413}, status_code=413)
        else:
            response = PlainTextResponse(error.detail, status_code=413)
        # The body is never read; the server closes the connection after this answer.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


async def _rate_limited(request: Request, error: Exception) -> Response:
    assert isinstance(error, RateLimited)
    response = error_response(request, 429, str(error))
    response.headers["Retry-After"] = str(error.retry_after_s)
    return response


def install_limits(app: FastAPI, settings: Settings) -> None:
    """Put the limits on ``app`` (``app.state.limits``), its 429 answer and the body size limit."""
    app.state.limits = Limits(bounded_sets(settings), settings)
    app.add_exception_handler(RateLimited, _rate_limited)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
