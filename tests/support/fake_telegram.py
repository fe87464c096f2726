"""A local fake of the Telegram Bot API for tests, plus a Rasa server started with kefu's channels (or, where only
the long poller is under test, a stand-in for Rasa's Telegram webhook).

The fake answers ``/bot<token>/<method>`` like api.telegram.org: it records every call, serves queued updates
to ``getUpdates``, and can be told to fail the next calls of a method (429 with ``retry_after``, 5xx).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.rasa_stack import RasaStack, start_stack
from tests.support.serving import serving_in_thread

TOKEN = "123456:TEST-fake-token"
SECRET = "kefu-test-secret"


@dataclass
class Failure:
    """One scripted error answer."""

    status: int
    retry_after: int | None = None


@dataclass
class FakeTelegram:
    """State of the fake Bot API server: calls received, updates to serve, failures to inject."""

    token: str = TOKEN
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, deque[Failure]] = field(default_factory=dict)
    base_url: str = ""
    _next_message_id: int = 1000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, method: str, status: int, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` with an error."""
        with self._lock:
            self.failures.setdefault(method, deque()).extend(Failure(status, retry_after) for _ in range(times))

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The sendMessage calls so far (optionally to one chat), with ``reply_markup`` decoded."""
        with self._lock:
            messages = [dict(params) for method, params in self.calls if method == "sendMessage"]
        for message in messages:
            if isinstance(message.get("reply_markup"), str):
                message["reply_markup"] = json.loads(message["reply_markup"])
        return [m for m in messages if chat_id is None or str(m.get("chat_id")) == str(chat_id)]

    def methods(self) -> list[str]:
        """Names of the methods called, in order."""
        with self._lock:
            return [method for method, _ in self.calls]

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> Any:
        """Poll until ``predicate()`` is truthy and return it, or fail with what was received."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"fake Telegram never saw the expected calls; got {self.calls}")

    async def _answer(self, request: Request) -> JSONResponse:
        token, method = request.path_params["token"], request.path_params["method"]
        if token != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        params = await _params(request)
        with self._lock:
            self.calls.append((method, params))
            queue = self.failures.get(method)
            failure = queue.popleft() if queue else None
        if failure is not None:
            body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": "scripted failure"}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
                body["description"] = f"Too Many Requests: retry after {failure.retry_after}"
            return JSONResponse(body, status_code=failure.status)
        if method == "getUpdates":
            return JSONResponse({"ok": True, "result": await self._updates(params)})
        return JSONResponse({"ok": True, "result": self._result(method, params)})

    async def _updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        # Long polling, shortened: wait at most a second for an update instead of Telegram's ``timeout``.
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            with self._lock:
                pending = [u for u in self.updates if u["update_id"] >= offset]
            if pending or time.monotonic() >= deadline:
                return pending
            await asyncio.sleep(0.05)

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": 42, "is_bot": True, "first_name": "kefu", "username": "kefu_test_bot"}
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            with self._lock:
                self._next_message_id += 1
                message_id = self._next_message_id
            chat_id = int(params["chat_id"])
            return {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": params.get("text", ""),
            }
        return True


async def _params(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        return await request.json()
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


@contextmanager
def fake_telegram_server(fake: FakeTelegram | None = None, port: int = 0) -> Iterator[FakeTelegram]:
    """Run a fake Bot API (``fake``, or a new one) on ``port`` (by default a free one) for the duration of the block;
    the same ``fake`` on the same port again is Telegram back from an outage, with what it had."""
    fake = fake or FakeTelegram()
    app = Starlette(routes=[Route("/bot{token}/{method}", fake._answer, methods=["GET", "POST"])])
    with serving_in_thread(app, port, lifespan="off") as base_url:
        fake.base_url = f"{base_url}/bot"
        yield fake


@dataclass
class WebhookStandIn:
    """What a stand-in for Rasa's Telegram webhook received, where the poller's own behaviour is under test."""

    url: str = ""
    update_ids: list[int] = field(default_factory=list)


@contextmanager
def webhook_stand_in() -> Iterator[WebhookStandIn]:
    """An HTTP server answering the updates posted to ``/webhooks/telegram/webhook`` as Rasa's Telegram channel does
    (``{"status": "ok"}``) and recording them; ``url`` is what KEFU_RASA_URL would be."""
    received = WebhookStandIn()

    async def accept(request: Request) -> JSONResponse:
        update = await request.json()
        received.update_ids.append(update["update_id"])
        return JSONResponse({"status": "ok", "update_id": update["update_id"]})

    app = Starlette(routes=[Route("/webhooks/telegram/webhook", accept, methods=["POST"])])
    with serving_in_thread(app, lifespan="off") as base_url:
        received.url = base_url
        yield received


def text_update(update_id: int, chat_id: int, text: str, language_code: str = "zh-hans") -> dict[str, Any]:
    """A Telegram update carrying a customer's text message."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Test", "language_code": language_code},
            "text": text,
        },
    }


def photo_update(update_id: int, chat_id: int) -> dict[str, Any]:
    """A Telegram update carrying a photo and no text."""
    update = text_update(update_id, chat_id, "")
    del update["message"]["text"]
    update["message"]["photo"] = [{"file_id": "AgAD", "file_unique_id": "u1", "width": 90, "height": 90}]
    return update


def callback_update(update_id: int, chat_id: int, data: str) -> dict[str, Any]:
    """A Telegram update for a tap on an inline keyboard button."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb{update_id}",
            "from": {"id": chat_id, "is_bot": False, "first_name": "Test", "language_code": "en"},
            "chat_instance": "ci",
            "data": data,
            "message": {
                "message_id": 7,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": "rate us",
            },
        },
    }


def start_channels_stack(
    database_url: str, work_dir: Path, telegram_api_url: str, env: dict[str, str] | None = None
) -> RasaStack:
    """The real Rasa server + action server of :mod:`tests.support.rasa_stack` with every channel ``kefu run`` gives
    Rasa (REST, web chat, Telegram) and Telegram settings pointing at ``telegram_api_url``."""
    telegram = {
        "KEFU_TELEGRAM_TOKEN": TOKEN,
        "KEFU_TELEGRAM_SECRET_TOKEN": SECRET,
        "KEFU_TELEGRAM_API_URL": telegram_api_url,
    }
    return start_stack(database_url, work_dir, all_channels=True, env={**telegram, **(env or {})})
