"""Telegram's webhook on the one public port: checked here, then relayed to Rasa's Telegram channel.

Point the bot's webhook at ``https://YOUR_HOST/webhooks/telegram/webhook`` with ``KEFU_TELEGRAM_SECRET_TOKEN`` as
its secret token. Requests without it are refused here, before they reach Rasa, which checks it again along with
the Rasa token. Who speaks is the update's own chat (``telegram:<chat id>``), decided by Rasa's channel.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from router.bootstrap import Kefu
from router.delivery.telegram_poll import SECRET_HEADER, WEBHOOK_PATH
from router.web.rasa_relay import RasaRelay, get_relay
from router.web.security import get_kefu

router = APIRouter()


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def telegram_webhook(
    request: Request, kefu: Kefu = Depends(get_kefu), relay: RasaRelay = Depends(get_relay)
) -> Response:
    """One update from Telegram, answered with Rasa's answer (Telegram redelivers on a 5xx)."""
    expected, given = kefu.settings.telegram_secret_token, request.headers.get(SECRET_HEADER, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return JSONResponse({"error": "missing or wrong secret token"}, status_code=403)
    return await relay.post(WEBHOOK_PATH, await request.body(), {SECRET_HEADER: given})
