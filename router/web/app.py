"""``create_app()``: the kefu web app (``uvicorn router.web.app:create_app --factory``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import RedirectResponse

from router.accounts.startup import ensure_safe_to_start
from router.bootstrap import Kefu, bootstrap
from router.settings import Settings, get_settings
from router.web import (
    admin,
    admin_users,
    analytics,
    api,
    auth,
    console,
    health,
    live,
    model_server,
    supervisor,
    telegram,
    ticket_actions,
    webchat,
)
from router.web.error_handlers import install_error_handlers
from router.web.headers import install_security_headers
from router.web.limits import install_limits
from router.web.rasa_relay import relay_lifespan
from router.web.templating import STATIC_DIR
from router.web.wakeups import TicketWakeups

SESSION_MAX_AGE_S = 12 * 3600  # one working day: agents log in again each shift


class UvicornOptions(TypedDict):
    """How uvicorn serves the app, whatever address it listens on."""

    timeout_graceful_shutdown: int
    proxy_headers: bool


# `kefu web` passes these to uvicorn.run; the tests that serve the app themselves pass them to uvicorn too.
UVICORN_OPTIONS: UvicornOptions = {
    "timeout_graceful_shutdown": 2,  # open live-update streams would otherwise hold Ctrl-C for 30 s
    "proxy_headers": False,  # the app believes X-Forwarded-* from KEFU_TRUSTED_PROXIES only (router/web/headers.py)
}


@asynccontextmanager
async def _lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    async with relay_lifespan(app, settings), app.state.ticket_wakeups.listening():
        yield


def create_app(kefu: Kefu | None = None) -> FastAPI:
    """The web app on ``kefu`` (default: bootstrapped from the environment's settings); other routers mount here."""
    kefu = kefu or bootstrap(get_settings())
    ensure_safe_to_start(kefu)
    app = FastAPI(
        title="kefu 客服",
        description="Agent console, supervisor view and the JSON API for integrations. "
        "Authenticate with a session cookie (plus the `X-CSRF-Token` header) "
        "or a bearer token from `POST /api/tokens`.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lambda app: _lifespan(app, kefu.settings),
    )
    app.state.kefu = kefu
    app.state.ticket_wakeups = TicketWakeups(kefu.engine)
    app.add_middleware(
        SessionMiddleware,
        secret_key=kefu.secret_key,
        session_cookie="kefu_session",
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=kefu.settings.web_url.startswith("https://"),
    )
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    install_error_handlers(app)
    install_limits(app, kefu.settings)
    install_security_headers(app, kefu.settings)
    app.include_router(health.router)
    app.include_router(model_server.router)
    app.include_router(auth.router)
    app.include_router(console.router)
    app.include_router(live.router)
    app.include_router(ticket_actions.router)
    app.include_router(supervisor.router)
    app.include_router(api.router)
    app.include_router(admin.router)
    app.include_router(admin.category_router)
    app.include_router(admin_users.router)
    app.include_router(webchat.router)
    app.include_router(telegram.router)
    app.include_router(analytics.router)
    app.include_router(analytics.api_router)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/console", status_code=303)

    return app
