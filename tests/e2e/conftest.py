"""Browser-test fixtures: the kefu web app under uvicorn on a free port, and a Playwright page on Debian chromium."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.crm.conversations import current_conversation
from router.crm.models import Interaction, Speaker
from router.routing.tickets import open_ticket
from router.settings import Settings
from tests.conftest import DEMO_PASSWORD, make_kefu, seed_demo_with_chosen_passwords

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class WebServer:
    """A running web app: where to reach it and which database it serves."""

    base_url: str
    database_url: str
    settings: Settings


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(base_url: str, server: subprocess.Popen, log_path: Path) -> None:
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
    """uvicorn serving ``create_app`` with ``settings`` (and ``extra_env``) on a free port until the block ends;
    yields its base URL.

    ``host`` is the address it listens on (``0.0.0.0`` to face the network, as the one public process does);
    ``log_level`` "info" writes uvicorn's access log too, as ``kefu web`` does.
    """
    port = free_port()
    env = {
        **os.environ,
        "KEFU_DATABASE_URL": settings.database_url,
        "KEFU_VAR_DIR": str(settings.var_dir),
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
                "2",
                "--no-proxy-headers",  # as `kefu web`: the app itself trusts only KEFU_TRUSTED_PROXIES
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, server, log_path)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[WebServer]:
    """uvicorn serving ``create_app`` on a free port over a fresh migrated, demo-seeded SQLite CRM; stopped after."""
    database_url = f"sqlite:///{tmp_path / 'kefu.db'}"
    settings = Settings(database_url=database_url, var_dir=tmp_path / "var")
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, settings.data_dir)
        uow.commit()
    kefu.dispose()
    with running_web_app(settings, tmp_path / "uvicorn.log") as base_url:
        yield WebServer(base_url=base_url, database_url=database_url, settings=settings)


@pytest.fixture
def browser_page(request: pytest.FixtureRequest) -> Iterator:
    """A fresh Playwright page in headless Debian chromium; a screenshot is saved under test-artifacts/ at the end."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"no chromium at {CHROMIUM_PATH}")
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            page.screenshot(path=str(ARTIFACTS_DIR / f"{name}-final.png"), full_page=True)
            context.close()
            browser.close()


def log_in(page, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log ``username`` into the console through the login form, the way a person does."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console.*"))


@dataclass(frozen=True)
class DemoAssessment:
    """A triage result for tests: the routing service takes any object with these fields."""

    category: str = "delivery"
    team: str = "logistics"
    confidence: float = 0.9
    terms: tuple[str, ...] = ("快递", "delayed")
    needs_review: bool = False
    urgency_score: float = 0.7
    urgency_factors: dict = field(default_factory=lambda: {"severity": 0.45, "negativity": 0.8})
    priority: int = 2
    first_response_minutes: int = 30
    resolution_minutes: int = 480
    floors: list = field(default_factory=list)


@contextmanager
def seeded_kefu(database_url: str, tmp_path: Path, **overrides: object) -> Iterator[Kefu]:
    """A demo-seeded CRM whose Rasa URL points at a closed port: resolving never talks to anyone else's Rasa."""
    overrides.setdefault("rasa_url", f"http://127.0.0.1:{free_port()}")
    kefu = make_kefu(database_url, tmp_path, **overrides)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, kefu.settings.data_dir)
        uow.commit()
    try:
        yield kefu
    finally:
        kefu.dispose()


def open_demo_ticket(kefu: Kefu, sender_id: str, text: str, **assessment: object) -> int:
    """Open a ticket the way the bot does (customer turn logged, routing service called); returns its id."""
    with kefu.uow() as uow:
        conversation = current_conversation(uow.session, sender_id, language="zh")
        uow.session.add(
            Interaction(
                conversation_id=conversation.id,
                customer_id=conversation.customer_id,
                speaker=Speaker.customer,
                channel=conversation.channel,
                text=text,
                language="zh",
            )
        )
        ticket = open_ticket(
            uow.session,
            conversation=conversation,
            text=text,
            order_number=None,
            assessment=DemoAssessment(**assessment),
        )
        uow.commit()
        return ticket.id
