"""The customer web chat: the page, its messages, its history and the live stream of bot and agent turns.

Who is speaking is decided here, never by the browser: every message, history read and event stream belongs to the
session (a random UUID naming one web customer) that a value signed with the process's key names, whatever the request
body says. The ``/chat`` page keeps it in an HttpOnly cookie. The script-tag widget's frame on a shop's site cannot
rely on a cookie there (a third-party one, which Safari, Firefox's strict mode and Chrome with third-party cookies
blocked refuse): it keeps a signed *session token* from ``POST /webchat/sessions`` in local storage (see
``static/webchat.js``) and sends it in the ``X-Kefu-Chat-Token`` header, never in a URL, so no access log holds it.
A token, when sent, decides alone: one that is forged, tampered with or expired is refused (401), never passed over
for a cookie. Messages are relayed to Rasa's ``webchat`` channel (``bot/channels/webchat.py``) over the private
network, so the browser only ever talks to this app (same origin, no CORS).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query, Request
from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.sql import Select
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from router.bootstrap import Kefu
from router.crm.conversations import sender_id_for
from router.crm.models import Channel, Conversation, Interaction, Speaker
from router.web.limits import Limits, client_ip, get_limits
from router.web.rasa_relay import RasaRelay, get_relay
from router.web.security import get_kefu
from router.web.templating import templates

router = APIRouter()

POLL_INTERVAL_S = 0.5
# The stream ends now and then and the page opens it again after the last turn it shows (EventSource clients send
# Last-Event-ID): nothing is missed, nothing held long.
STREAM_LIFETIME_S = 120.0
HISTORY_LIMIT = 200
BATCH_LIMIT = 100
_SHOWN_SPEAKERS = (Speaker.customer, Speaker.bot, Speaker.agent)
_PUSHED_SPEAKERS = (Speaker.bot, Speaker.agent)
_NO_STORE = {"Cache-Control": "no-store"}
CHAT_COOKIE = "kefu_chat"
CHAT_COOKIE_MAX_AGE_S = 365 * 24 * 3600  # a returning customer finds their conversation, as with any chat widget
CHAT_TOKEN_HEADER = "X-Kefu-Chat-Token"
# As long as the cookie lives, and renewed, as the cookie is, each time the chat opens.
CHAT_TOKEN_MAX_AGE_S = CHAT_COOKIE_MAX_AGE_S
RASA_WEBCHAT_PATH = "/webhooks/webchat/webhook"
# What the page may say about a message; everything else in its body (a "session" or "sender" above all) is dropped.
_MESSAGE_FIELDS = ("message", "payload", "page")


def _cookie_serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="kefu-webchat-session")


def chat_cookie(secret_key: str, session: str) -> str:
    """The signed cookie value naming ``session``."""
    return _cookie_serializer(secret_key).dumps(session)


def chat_session(secret_key: str, cookie: str | None) -> str | None:
    """The session a cookie names, or None when it is missing, forged or not a UUID."""
    if not cookie:
        return None
    try:
        return str(uuid.UUID(str(_cookie_serializer(secret_key).loads(cookie))))
    except (BadSignature, ValueError):
        return None


def _token_serializer(secret_key: str) -> URLSafeTimedSerializer:
    # Its own salt: a cookie value is no token, nor a token a cookie.
    return URLSafeTimedSerializer(secret_key, salt="kefu-webchat-token")


def chat_token(secret_key: str, session: str) -> str:
    """A session token naming ``session``, signed now (it expires ``CHAT_TOKEN_MAX_AGE_S`` later)."""
    return _token_serializer(secret_key).dumps(session)


class ChatTokenRefused(Exception):
    """A session token that is forged, tampered with, expired or names no session."""


def token_session(secret_key: str, token: str) -> str:
    """The session ``token`` names; ``ChatTokenRefused`` saying why when it names none."""
    try:
        return str(uuid.UUID(str(_token_serializer(secret_key).loads(token, max_age=CHAT_TOKEN_MAX_AGE_S))))
    except SignatureExpired as error:
        refusal = "chat session expired: reload the chat to start a new one · 会话已过期，请重新打开"
        raise ChatTokenRefused(refusal) from error
    except (BadData, ValueError) as error:
        raise ChatTokenRefused("chat session token is not valid · 会话凭证无效") from error


def _refused(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=401, headers=_NO_STORE)


def _session_of(request: Request, kefu: Kefu) -> str | JSONResponse:
    """The session the request's token (if it sends one) or else its cookie names, or the 401 refusing it."""
    token = request.headers.get(CHAT_TOKEN_HEADER)
    if token is not None:
        try:
            return token_session(kefu.secret_key, token)
        except ChatTokenRefused as refusal:
            return _refused(str(refusal))
    session = chat_session(kefu.secret_key, request.cookies.get(CHAT_COOKIE))
    if session is None:
        return _refused("no chat session: allow cookies for this site and reload the page · 请允许本站 Cookie 后刷新")
    return session


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
    """The chat page customers open; it sets the session cookie, except inside the script-tag widget's frame
    (``?embed=1``), whose page asks for a session token instead."""
    page = templates.TemplateResponse(request, "webchat.html", {"embed": embed})
    if embed:
        return page
    session = chat_session(kefu.secret_key, request.cookies.get(CHAT_COOKIE)) or str(uuid.uuid4())
    page.set_cookie(
        CHAT_COOKIE,
        chat_cookie(kefu.secret_key, session),
        max_age=CHAT_COOKIE_MAX_AGE_S,
        httponly=True,
        secure=kefu.settings.web_url.startswith("https://"),
        samesite="lax",
    )
    return page


@router.post("/webchat/sessions")
def open_session(request: Request, kefu: Kefu = Depends(get_kefu)) -> JSONResponse:
    """``{"token": ...}``: a fresh token for the session the ``X-Kefu-Chat-Token`` header names (so a returning
    customer's token lives on), or for a new session when the request sends none."""
    if CHAT_TOKEN_HEADER.lower() in request.headers:
        session = _session_of(request, kefu)
        if isinstance(session, Response):
            return session
    else:
        session = str(uuid.uuid4())
    return JSONResponse({"token": chat_token(kefu.secret_key, session)}, headers=_NO_STORE)


@router.post("/webchat/messages")
async def send_message(
    request: Request,
    kefu: Kefu = Depends(get_kefu),
    relay: RasaRelay = Depends(get_relay),
    limits: Limits = Depends(get_limits),
) -> Response:
    """The customer's message (``{"message": text}`` or ``{"payload": button}``) to the assistant; its replies back.

    Only JSON is taken: a page on another site cannot send it without a CORS preflight, which this app never grants.
    """
    session = _session_of(request, kefu)
    if isinstance(session, Response):
        return session
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return JSONResponse({"error": "send the message as application/json"}, status_code=415)
    try:
        body = json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    relayed = {name: body[name] for name in _MESSAGE_FIELDS if isinstance(body.get(name), str)}
    relayed["session"] = session
    await run_in_threadpool(limits.webchat_message, kefu, client_ip(request), sender_id_for(Channel.web, session))
    answer = await relay.post(RASA_WEBCHAT_PATH, json.dumps(relayed).encode())
    answer.headers.update(_NO_STORE)
    return answer


@router.get("/webchat/history")
def history(request: Request, kefu: Kefu = Depends(get_kefu), limits: Limits = Depends(get_limits)) -> JSONResponse:
    """JSON list of the session's turns (customer, bot, agent), oldest first."""
    session = _session_of(request, kefu)
    if isinstance(session, Response):
        return session
    sender_id = sender_id_for(Channel.web, session)
    limits.new_webchat_session(kefu, client_ip(request), sender_id)
    return JSONResponse({"turns": chat_history(kefu, sender_id)}, headers=_NO_STORE)


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
    after: int = Query(0, ge=0),
    kefu: Kefu = Depends(get_kefu),
    limits: Limits = Depends(get_limits),
) -> Response:
    """``text/event-stream`` of ``turn`` events: bot and agent turns after ``after`` (or Last-Event-ID)."""
    session = _session_of(request, kefu)
    if isinstance(session, Response):
        return session
    sender_id = sender_id_for(Channel.web, session)
    last_event_id = request.headers.get("last-event-id", "")
    after_id = max(after, int(last_event_id)) if last_event_id.isdigit() else after
    await run_in_threadpool(limits.new_webchat_session, kefu, client_ip(request), sender_id)
    slot = await run_in_threadpool(limits.open_stream, client_ip(request), sender_id)
    return StreamingResponse(
        slot.hold(_stream(request, kefu, sender_id, after_id)),
        media_type="text/event-stream",
        headers={**_NO_STORE, "X-Accel-Buffering": "no"},
    )
