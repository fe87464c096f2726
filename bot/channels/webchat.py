"""The web chat's Rasa input channel: JSON over REST at ``/webhooks/webchat/webhook``, for kefu's web app only.

The browser never calls it: the page posts to the web app (``router/web/webchat.py``), which takes the customer's
session from its own signed cookie and forwards ``{"session": <uuid>, "message": <text>}`` (or ``"payload"`` for a
tapped button) here with ``?token=KEFU_RASA_TOKEN``, and returns the ``{"messages": [...]}`` answer. Replies Rasa
sends on its own and agents' replies reach the page from the CRM through the web app's event stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.inbound import RejectedMessage, button_payload, from_kefu, typed_text
from router.crm.conversations import sender_id_for
from router.crm.models import Channel
from router.settings import get_settings

_REPLY_FIELDS = ("text", "buttons", "image", "custom")


def parse_session(value: Any) -> str:
    """The browser's session id, which must be a UUID (it becomes the sender id ``web:<uuid>``)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as error:
        raise RejectedMessage("session must be a UUID") from error


class WebchatInput(InputChannel):
    """Messages from the kefu web chat page, relayed by the web app; replies come back in the HTTP response."""

    @classmethod
    def name(cls) -> str:
        """URL segment and tracker channel name."""
        return "webchat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """The channel checking ``KEFU_RASA_TOKEN`` (nothing secret goes into ``credentials.yml``)."""
        return cls(get_settings().rasa_token)

    def __init__(self, rasa_token: str) -> None:
        self.rasa_token = rasa_token

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Health check and the message endpoint."""
        hook = Blueprint("kefu_webchat_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not from_kefu(request.args.get("token", ""), self.rasa_token):
                return response.json({"error": "missing or wrong token: only kefu's web app may call"}, status=401)
            try:
                body = request.json
            except Exception:  # Sanic raises its own BadRequest for any body that is not JSON
                body = None
            if not isinstance(body, dict):
                return response.json({"error": "body must be a JSON object"}, status=400)
            try:
                session = parse_session(body.get("session"))
                text = button_payload(body["payload"]) if body.get("payload") else typed_text(body.get("message"))
            except RejectedMessage as error:
                return response.json({"error": str(error)}, status=422)
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
            return response.json({"messages": replies})

        return hook
