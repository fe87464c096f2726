"""The web app's one way into Rasa's channels: over the private network (loopback by default), with the Rasa token.

Rasa listens on ``KEFU_RASA_HOST`` (127.0.0.1 unless set), so the web app is the only public process: it takes the
web chat's and Telegram's requests, decides who is speaking, and relays them here. The hop runs on aiohttp's client
(already installed with Rasa), which cost the web app about half the CPU per relayed turn that httpx's did, over one
connection pool per process, and passes Rasa's answer on unparsed; ``python -m benchmarks.channels`` measures what
the hop adds to a turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from router.settings import Settings

logger = logging.getLogger(__name__)
# A turn can include sending the reply to Telegram's Bot API with its retries; Telegram itself waits about a minute.
RELAY_TIMEOUT_S = 60.0


class RasaRelay:
    """Posts to Rasa's input channels with ``KEFU_RASA_TOKEN`` and hands back Rasa's answer as it came."""

    def __init__(self, rasa_url: str, rasa_token: str, timeout_s: float = RELAY_TIMEOUT_S) -> None:
        self._base_url = rasa_url.rstrip("/")
        self._params = {"token": rasa_token}
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout_s), connector=aiohttp.TCPConnector(limit=200)
        )

    async def post(self, path: str, content: bytes, headers: dict[str, str] | None = None) -> Response:
        """Rasa's answer to a POST of ``content`` to ``path``, passed on as it came; 502/504 if Rasa does not answer."""
        try:
            async with self._session.post(
                self._base_url + path,
                params=self._params,
                data=content,
                headers={"Content-Type": "application/json", **(headers or {})},
            ) as answer:
                status, media_type, body = answer.status, answer.content_type, await answer.read()
        except asyncio.TimeoutError:
            return JSONResponse({"error": "the assistant took too long to answer; try again"}, status_code=504)
        except aiohttp.ClientError:
            return _unavailable()
        if status in (401, 403):
            # The caller was let in here, so Rasa refusing the relay means the two disagree on a token.
            logger.error("Rasa refused the relay to %s (%s): is KEFU_RASA_TOKEN the same for both?", path, body[:300])
            return _unavailable()
        return Response(body, status_code=status, media_type=media_type)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._session.close()


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
