"""The web app for tests: under uvicorn on a free port (in a process of its own, or in a thread of the test's), or
in-process without HTTP, and clients logged in the way people log in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from router.bootstrap import Kefu, bootstrap
from router.settings import Settings
from router.web.app import UVICORN_OPTIONS, create_app
from tests.support.crm import DEMO_PASSWORD
from tests.support.listening import free_port
from tests.support.serving import serving_in_thread

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class WebServer:
    """A running web app: where to reach it and which database it serves."""

    base_url: str
    database_url: str
    settings: Settings


@dataclass(frozen=True)
class Server:
    """A running web app and a kefu on its database, to set up accounts the way the CLI would."""

    base_url: str
    kefu: Kefu

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60)


def wait_until_healthy(base_url: str, server: subprocess.Popen, log_path: Path) -> None:
    """Return once ``/healthz`` answers 200; fail the test with the log's tail if the app exits or never does."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"web app exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"web app not healthy within 60 s:\n{log_path.read_text()[-3000:]}")


@contextmanager
def running_web_app(
    settings: Settings,
    log_path: Path,
    host: str = "127.0.0.1",
    extra_env: dict[str, str] | None = None,
    log_level: str = "warning",
) -> Iterator[str]:
    """uvicorn serving ``create_app`` with ``settings`` (and ``extra_env``) on a free port until the block ends, in a
    process of its own that reads them from its ``KEFU_*`` environment; yields its base URL.

    For tests whose point is the process (several sharing a limit, the address it binds, its log). ``host`` is the
    address it listens on (``0.0.0.0`` to face the network, as the one public process does); ``log_level`` "info"
    writes uvicorn's access log too, as ``kefu web`` does.
    """
    port = free_port()
    env = {
        **os.environ,
        "KEFU_DATABASE_URL": settings.database_url,
        "KEFU_VAR_DIR": str(settings.var_dir),
        "KEFU_MODELS_DIR": str(settings.models_dir),  # a promotion there must not move the checkout's model
        "KEFU_SECRET_KEY": settings.secret_key,
        "KEFU_RASA_URL": settings.rasa_url,
        "KEFU_RASA_TOKEN": settings.rasa_token,
        "KEFU_TELEGRAM_TOKEN": settings.telegram_token,
        "KEFU_TELEGRAM_SECRET_TOKEN": settings.telegram_secret_token,
        "KEFU_TELEGRAM_API_URL": settings.telegram_api_url,
        "KEFU_WEB_PORT": str(port),
        "KEFU_PUBLIC_URL": f"http://127.0.0.1:{port}",
        **(extra_env or {}),
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "router.web.app:create_app",
                "--factory",
                "--host",
                host,
                "--port",
                str(port),
                "--log-level",
                log_level,
                "--timeout-graceful-shutdown",
                str(UVICORN_OPTIONS["timeout_graceful_shutdown"]),
                "--proxy-headers" if UVICORN_OPTIONS["proxy_headers"] else "--no-proxy-headers",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, server, log_path)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def web_app_in_thread(settings: Settings) -> Iterator[str]:
    """uvicorn serving ``create_app`` with ``settings``, configured as ``kefu web`` configures it, on a free port in a
    thread of this process until the block ends; yields its base URL.

    The app has a kefu of its own, as the web app process has: what it caches (the signing key) it finds for itself.
    """
    kefu = bootstrap(settings)
    try:
        with serving_in_thread(create_app(kefu), **UVICORN_OPTIONS) as base_url:
            yield base_url
    finally:
        kefu.dispose()


def login(kefu: Kefu, username: str) -> tuple[TestClient, str]:
    """An in-process client logged in as ``username`` through the form, and its session's CSRF token."""
    client = TestClient(create_app(kefu))
    token = CSRF_FIELD.search(client.get("/login").text).group(1)
    response = client.post(
        "/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/console")
    return client, CSRF_FIELD.search(page.text).group(1)


def bearer(kefu: Kefu, username: str) -> TestClient:
    """An in-process client that authenticates every call with an API token, no cookies."""
    client = TestClient(create_app(kefu))
    response = client.post("/api/tokens", json={"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['token']}"
    return client


def csrf_of(client: httpx.Client, path: str) -> str:
    """The CSRF token of the form at ``path``."""
    return CSRF_FIELD.search(client.get(path).text).group(1)


def form_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """Log in through the login form, as a browser does."""
    token = csrf_of(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})
