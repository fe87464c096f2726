"""Browser hardening headers on every answer: no MIME sniffing, no referrer leaks, console pages never framed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from starlette.responses import Response

# The web chat is embedded in customers' sites through a frame; everything else (console, admin) must not be,
# so a hostile page cannot trick an agent into clicking "resolve" or "transfer" (clickjacking).
FRAMEABLE_PREFIXES = ("/chat", "/webchat", "/static")


def install_security_headers(app: FastAPI) -> None:
    """Add the headers to every response of ``app``."""

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(FRAMEABLE_PREFIXES):
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        return response
