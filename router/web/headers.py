"""Browser hardening headers on every answer: a strict Content-Security-Policy, no framing of the console, HSTS and
Secure cookies over https, and no referrer, camera or microphone for anyone.

The policy allows scripts only from this site's ``/static`` files: an injected ``<script>`` or ``onclick=`` in a
page (customer text shown to an agent, say) does not run. Templates therefore carry no inline scripts, handlers or
style attributes; behaviour hangs on ids and ``data-`` attributes that the files in ``/static`` look for.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from router.settings import Settings

# The web chat is embedded in the shop's own sites through a frame (KEFU_WEBCHAT_EMBED_ORIGINS); everything else
# (console, admin) must not be, so a hostile page cannot trick an agent into clicking "resolve" or "transfer"
# (clickjacking), nor a customer into chatting with kefu under another site's name.
FRAMEABLE_PREFIXES = ("/chat", "/webchat", "/static")
HSTS = "max-age=31536000"
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), display-capture=()"
REFERRER_POLICY = "same-origin"
# FastAPI's API docs page loads Swagger UI from this CDN and starts it with one inline script (pinned by its hash).
SWAGGER_CDN = "https://cdn.jsdelivr.net"
SWAGGER_FAVICON_ORIGIN = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _policy(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _inline_script_hashes(html: str) -> str:
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )


def _swagger_ui_html(app: FastAPI) -> str:
    # The same call FastAPI's docs route makes (kefu is served at the root path), so the hashes match its page.
    response = get_swagger_ui_html(
        openapi_url=app.openapi_url or "",
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )
    return bytes(response.body).decode()


class ContentSecurityPolicies:
    """The policy of each kind of page: console pages, the embeddable web chat and the API docs."""

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        base = {
            "default-src": "'self'",
            "script-src": "'self'",
            "style-src": "'self'",
            "img-src": "'self' data:",  # analytics charts are inline PNGs
            "connect-src": "'self'",
            "object-src": "'none'",
            "base-uri": "'self'",
            "form-action": "'self'",
            "frame-ancestors": "'none'",
        }
        self.console = _policy(base)
        # The chat page talks only to this app, which relays to Rasa: the same policy, but embeddable in shops' sites.
        webchat = dict(base)
        if "*" in settings.webchat_embedders:
            del webchat["frame-ancestors"]
        else:
            webchat["frame-ancestors"] = " ".join(["'self'", *settings.webchat_embedders])
        self.webchat = _policy(webchat)
        self.docs_path = app.docs_url
        self.docs = _policy(
            {
                **base,
                "script-src": f"'self' {SWAGGER_CDN} {_inline_script_hashes(_swagger_ui_html(app))}",
                "style-src": f"'self' {SWAGGER_CDN} 'unsafe-inline'",  # Swagger UI styles its widgets inline
                "img-src": f"'self' data: {SWAGGER_FAVICON_ORIGIN}",
            }
        )

    def for_path(self, path: str) -> str:
        """The policy for a page at ``path``."""
        if path == self.docs_path:
            return self.docs
        return self.webchat if path.startswith(FRAMEABLE_PREFIXES) else self.console


def served_over_https(request: Request, settings: Settings) -> bool:
    """Whether the browser reached us over https: directly, through a trusted proxy, or by the configured URL."""
    return request.url.scheme == "https" or settings.web_url.startswith("https://")


def _secure_cookies(response: Response) -> None:
    cookies = response.headers.getlist("set-cookie")
    if all("; secure" in cookie.lower() for cookie in cookies):
        return
    del response.headers["set-cookie"]
    for cookie in cookies:
        response.headers.append("set-cookie", cookie if "; secure" in cookie.lower() else f"{cookie}; Secure")


def install_security_headers(app: FastAPI, settings: Settings) -> None:
    """Add the headers to every response of ``app``; believe X-Forwarded-For/-Proto only from trusted proxies."""
    policies = ContentSecurityPolicies(app, settings)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", REFERRER_POLICY)
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        headers.setdefault("Content-Security-Policy", policies.for_path(request.url.path))
        if not request.url.path.startswith(FRAMEABLE_PREFIXES):
            headers.setdefault("X-Frame-Options", "DENY")
        if served_over_https(request, settings):
            headers.setdefault("Strict-Transport-Security", HSTS)
            _secure_cookies(response)
        return response

    # Added last, so it runs first: everything after it sees the client and scheme the trusted proxy reported.
    # uvicorn types the ASGI app with its own scope TypedDicts, Starlette with plain mappings: the same at run time.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)  # type: ignore[arg-type]
