"""The web app's one way into Rasa's channels: over the private network (loopback by default), with the Rasa token.

Rasa listens on ``KEFU_RASA_HOST`` (127.0.0.1 unless set), so the web app is the only public process: it takes the
web chat's and Telegram's requests, decides who is speaking, and relays them here. One connection pool per process
keeps the extra hop to about a millisecond (``python -m benchmarks.channels`` measures it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from router.settings import Settings

logger = logging.getLogger(__name__)
# A turn can include sending the reply to Telegram's Bot API with its retries; Telegram itself waits about a minute.
RELAY_TIMEOUT_S = 60.0


class RasaRelay:
    """Posts to Rasa's input channels with ``KEFU_RASA_TOKEN`` and hands back Rasa's answer as it came."""

    def __init__(self, rasa_url: str, rasa_token: str, timeout_s: float = RELAY_TIMEOUT_S) -> None:
        self._client = httpx.AsyncClient(
            base_url=rasa_url.rstrip("/"),
            params={"token": rasa_token},
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def post(self, path: str, content: bytes, headers: dict[str, str] | None = None) -> JSONResponse:
        """Rasa's status and JSON body for a POST of ``content`` to ``path``; 502/504 when Rasa does not answer."""
        try:
            answer = await self._client.post(
                path, content=content, headers={"Content-Type": "application/json", **(headers or {})}
            )
        except httpx.TimeoutException:
            return JSONResponse({"error": "the assistant took too long to answer; try again"}, status_code=504)
        except httpx.HTTPError:
            return _unavailable()
        if answer.status_code in (401, 403):
            # The caller was let in here, so Rasa refusing the relay means the two disagree on a token.
            logger.error("Rasa refused the relay to %s (%s): is KEFU_RASA_TOKEN the same for both?", path, answer.text)
            return _unavailable()
        try:
            body: Any = answer.json()
        except ValueError:
            body = {"error": f"the assistant answered {answer.status_code}"}
        return JSONResponse(body, status_code=answer.status_code)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


def _unavailable() -> JSONResponse:
    return JSONResponse({"error": "the assistant is not reachable right now; try again"}, status_code=502)


@asynccontextmanager
async def relay_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Open the relay when the app starts serving (in its event loop) and close it on shutdown."""
    app.state.rasa_relay = RasaRelay(settings.rasa_url, settings.rasa_token)
    try:
        yield
    finally:
        await app.state.rasa_relay.aclose()


def get_relay(request: Request) -> RasaRelay:
    """The app's relay (opened by :func:`relay_lifespan`)."""
    return request.app.state.rasa_relay
