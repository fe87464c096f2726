"""The web chat page's Rasa input channel: JSON over REST at ``/webhooks/webchat/webhook``, open to any origin.

The page (and the script-tag widget on other sites) posts ``{"session": <uuid>, "message": <text>}`` or
``{"session": <uuid>, "payload": <button payload>}`` as ``text/plain`` (a CORS "simple request", so browsers send
no preflight) and gets ``{"messages": [...]}`` back. Replies Rasa sends on its own and agents' replies reach the
page from the CRM through the kefu web app's event stream (``router/web/webchat.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sanic_cors.core import SANIC_CORS_EVALUATED

from bot.channels.inbound import RejectedMessage, button_payload, typed_text
from router.crm.conversations import sender_id_for
from router.crm.models import Channel

_REPLY_FIELDS = ("text", "buttons", "image", "custom")


def _cors(request: Request, reply: HTTPResponse) -> HTTPResponse:
    # The widget runs on other sites; marking the request as handled stops `rasa run --cors` adding a second header.
    reply.headers["Access-Control-Allow-Origin"] = "*"
    setattr(request.ctx, SANIC_CORS_EVALUATED, "1")
    return reply


def parse_session(value: Any) -> str:
    """The browser's session id, which must be a UUID (it becomes the sender id ``web:<uuid>``)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as error:
        raise RejectedMessage("session must be a UUID") from error


class WebchatInput(InputChannel):
    """Messages from the kefu web chat page; replies come back in the HTTP response."""

    @classmethod
    def name(cls) -> str:
        """URL segment and tracker channel name."""
        return "webchat"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Health check and the message endpoint."""
        hook = Blueprint("kefu_webchat_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return _cors(request, response.json({"status": "ok"}))

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # Sanic raises its own BadRequest for any body that is not JSON
                body = None
            if not isinstance(body, dict):
                return _cors(request, response.json({"error": "body must be a JSON object"}, status=400))
            try:
                session = parse_session(body.get("session"))
                text = button_payload(body["payload"]) if body.get("payload") else typed_text(body.get("message"))
            except RejectedMessage as error:
                return _cors(request, response.json({"error": str(error)}, status=422))
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(
                    text,
                    collector,
                    sender_id_for(Channel.web, session),
                    input_channel=self.name(),
                    metadata={"webchat": {"page": str(body.get("page", ""))[:300]}},
                )
            )
            replies = [{k: m[k] for k in _REPLY_FIELDS if m.get(k)} for m in collector.messages]
            return _cors(request, response.json({"messages": replies}))

        return hook
