"""``python -m bot.action_server``: rasa-sdk's action server, answering only callers that show the action token.

rasa-sdk 3.6 has no authentication of its own: anyone reaching it could run any action on a hand-made tracker
(file tickets, hand off, read a customer's ticket status). Rasa sends the ``token`` of its ``action_endpoint``
(``KEFU_ACTION_TOKEN``, written into the endpoints file by ``kefu run``) as a ``token`` query parameter on every
call; requests without it are refused. ``/health`` stays open for health checks. The server listens on
``KEFU_ACTION_HOST`` (loopback unless set) and ``KEFU_ACTION_PORT``, with no CORS: browsers never call it.
"""

from __future__ import annotations

import hmac
import logging

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from router.settings import Settings, get_settings

ACTIONS_PACKAGE = "actions"
OPEN_PATHS = frozenset({"/health"})


def create_action_app(token: str, actions_package: str = ACTIONS_PACKAGE) -> Sanic:
    """rasa-sdk's Sanic app for ``actions_package`` with every route but ``/health`` behind ``token``."""
    if not token:
        raise SystemExit("KEFU_ACTION_TOKEN is not set: the action server would run actions for anyone")
    app = create_app(actions_package, cors_origins=None)

    @app.middleware("request")
    async def require_token(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        given = request.args.get("token", "")
        if hmac.compare_digest(given.encode(), token.encode()):
            return None
        return response.json({"error": "missing or wrong action server token"}, status=401)

    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    return app


def serve(settings: Settings) -> None:
    """Run the action server until stopped."""
    utils.configure_colored_logging(logging.INFO)
    utils.update_sanic_log_level()
    app = create_action_app(settings.action_token)
    app.run(settings.action_host, settings.action_port, workers=utils.number_of_sanic_workers())


if __name__ == "__main__":
    serve(get_settings())
