"""A real Rasa server and action server for tests: train (or reuse) the model, start both on free ports, stop them.

Tests use it through the session-scoped ``rasa_stack`` fixture in ``tests/integration/conftest.py`` (or start their
own stack) and are marked ``rasa``; benchmarks may use :func:`running_stack` directly.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

from router.db import build_engine
from router.runner import channel_credentials, event_broker_endpoint, model_server_endpoint, rasa_stores
from router.settings import Settings
from tests.support.listening import free_port
from tests.support.markers import require_marker
from tests.support.model_cache import PROJECT_ROOT, cached, fingerprint

RASA = str(Path(sys.executable).with_name("rasa"))

# Everything the trained model depends on; a change to any of these means a new model.
MODEL_INPUTS = ("config.yml", "domain.yml", "data/nlu", "data/rules.yml", "data/stories.yml", "data/jieba", "bot/nlu")
# What `rasa train` reads as training data (data/ also holds non-Rasa files such as faq.yml).
TRAINING_DATA = ("data/nlu", "data/rules.yml", "data/stories.yml")
START_TIMEOUT_SECONDS = 240
TRAIN_TIMEOUT_SECONDS = 900


def rasa_env(**extra: str) -> dict[str, str]:
    """Environment for rasa subprocesses: no telemetry, the project importable, plus ``extra``."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")]))
    return env


def trained_model() -> Path:
    """Path of the model for the current assistant, trained once for every run that needs it."""
    require_marker("rasa", "trains or loads the assistant's Rasa model")
    return cached("rasa", fingerprint(MODEL_INPUTS), _train, suffix=".tar.gz")


def _train(model: Path) -> None:
    out_dir, name = model.parent, model.name.removesuffix(".tar.gz")
    command = [RASA, "train", "--config", "config.yml", "--domain", "domain.yml", "--data", *TRAINING_DATA]
    command += ["--out", str(out_dir), "--fixed-model-name", name]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=rasa_env(), capture_output=True, text=True, timeout=TRAIN_TIMEOUT_SECONDS
    )
    if result.returncode != 0 or not model.exists():
        raise RuntimeError(f"rasa train failed ({result.returncode}):\n{result.stdout[-4000:]}{result.stderr[-4000:]}")


def write_endpoints(
    directory: Path,
    settings: Settings,
    action_endpoint: dict[str, str],
    event_broker: bool | dict[str, Any],
    channels: dict[str, Any],
) -> Path:
    """Endpoints and credentials files for this stack (the repo's endpoints.yml has fixed ports).

    The tracker and lock stores, the model server when on, and with RabbitMQ the event broker are what ``kefu run``
    gives Rasa for ``settings``, so tests and benchmarks run what customers reach.
    """
    endpoints: dict[str, Any] = {"action_endpoint": action_endpoint, **rasa_stores(settings)}
    if settings.model_server:
        endpoints["models"] = model_server_endpoint(settings)
    if settings.rabbitmq_url:
        endpoints["event_broker"] = event_broker_endpoint(settings.rabbitmq_url, settings.rabbitmq_queue)
    elif event_broker:
        options = event_broker if isinstance(event_broker, dict) else {}
        endpoints["event_broker"] = {"type": "bot.event_broker.CrmEventBroker", **options}
    path = directory / "endpoints.yml"
    path.write_text(yaml.safe_dump(endpoints), encoding="utf-8")
    (directory / "credentials.yml").write_text(yaml.safe_dump(channels), encoding="utf-8")
    return path


def tracker_events(tracker_url: str, sender_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, event) of the sender's events in a SQL tracker store (Rasa's ``events`` table), in the order stored."""
    engine = build_engine(tracker_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT type_name, data FROM events WHERE sender_id = :sender ORDER BY id"),
                {"sender": sender_id},
            ).all()
    finally:
        engine.dispose()
    return [(type_name, json.loads(data)) for type_name, data in rows]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and everything it spawned (Sanic forks workers)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@dataclass
class RasaStack:
    """A running Rasa server + action server pair, talking to the CRM at ``database_url``.

    Both listen on loopback and want their tokens, as under ``kefu run``; ``client`` sends the Rasa token.
    """

    rasa_url: str
    action_url: str
    database_url: str
    model_path: Path
    log_dir: Path
    rasa_token: str
    action_token: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=120, params={"token": self.rasa_token})

    def send(self, sender_id: str, text: str, metadata: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Post one customer message through the REST channel and return the bot's replies."""
        payload: dict[str, Any] = {"sender": sender_id, "message": text}
        if metadata is not None:
            payload["metadata"] = metadata
        response = self.client.post(f"{self.rasa_url}/webhooks/rest/webhook", json=payload)
        response.raise_for_status()
        return response.json()

    def tracker(self, sender_id: str) -> dict[str, Any]:
        """The conversation tracker, for asserting slots, intents and the active form."""
        response = self.client.get(f"{self.rasa_url}/conversations/{sender_id}/tracker")
        response.raise_for_status()
        return response.json()

    def trigger_intent(self, sender_id: str, intent: str, entities: dict[str, Any] | None = None) -> dict[str, Any]:
        """Inject an external intent (e.g. EXTERNAL_ticket_resolved) as the router does."""
        response = self.client.post(
            f"{self.rasa_url}/conversations/{sender_id}/trigger_intent",
            params={"output_channel": "latest"},
            json={"name": intent, "entities": entities or {}},
        )
        response.raise_for_status()
        return response.json()

    def logs(self) -> str:
        """Tail of both servers' logs, for assertion messages."""
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.log_dir.glob("*.log"))

    def stop(self) -> None:
        """Stop both servers."""
        self.client.close()
        for process in self.processes:
            _stop(process)


def _wait_healthy(stack: RasaStack, url: str, process: subprocess.Popen[bytes], ready: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}\n{stack.logs()}")
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200 and ready(response):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{url} not healthy after {START_TIMEOUT_SECONDS}s\n{stack.logs()}")


def start_stack(
    database_url: str,
    work_dir: Path,
    event_broker: bool | dict[str, Any] | None = None,
    all_channels: bool = False,
    env: dict[str, str] | None = None,
    model: Path | None = None,
) -> RasaStack:
    """Train or reuse the model (or serve ``model``), start both servers on free ports and wait until both answer.

    The servers run as ``kefu run`` starts them (``python -m bot.server`` and ``python -m bot.action_server``), on
    loopback, each with a fresh random token. With ``KEFU_RABBITMQ_URL`` in ``env`` Rasa publishes to RabbitMQ as under
    ``kefu run``; otherwise ``event_broker=None`` enables the CRM event broker when
    ``bot/event_broker.py`` exists (a dict enables it with these options, e.g. ``flush_interval_s``). The channels
    are the REST channel alone, or with ``all_channels`` those ``kefu run`` gives Rasa (REST unless
    ``KEFU_REST_CHANNEL=false`` is in ``env``, web chat, Telegram); ``env`` adds environment variables both servers
    see (e.g. the channels' tokens); a ``KEFU_RASA_TOKEN`` there is the stack's token, as the Rasa processes of one
    deployment share it, and ``KEFU_MODEL_SERVER`` makes Rasa pull its model from the web app (``model`` is then only
    the path Rasa is started with, which need not exist).
    """
    require_marker("rasa", "starts Rasa")
    model = model or trained_model()
    if event_broker is None:
        event_broker = (PROJECT_ROOT / "bot" / "event_broker.py").exists()
    work_dir.mkdir(parents=True, exist_ok=True)
    rasa_port, action_port = free_port(), free_port()
    rasa_token = (env or {}).get("KEFU_RASA_TOKEN") or secrets.token_urlsafe(24)
    action_token = secrets.token_urlsafe(24)
    process_env = rasa_env(
        **{
            "KEFU_DATABASE_URL": database_url,
            "KEFU_RASA_PORT": str(rasa_port),
            "KEFU_RASA_TOKEN": rasa_token,
            "KEFU_ACTION_PORT": str(action_port),
            "KEFU_ACTION_TOKEN": action_token,
            **(env or {}),
        }
    )
    # The servers' own view of the settings that shape the files written for them.
    settings = Settings(
        _env_file=None,
        rasa_port=rasa_port,
        action_port=action_port,
        rasa_url="",
        action_url="",
        env=process_env.get("KEFU_ENV", "development"),
        rest_channel=process_env.get("KEFU_REST_CHANNEL"),
        var_dir=work_dir,
        tracker_store_url=process_env.get("KEFU_TRACKER_STORE_URL", ""),
        redis_url=process_env.get("KEFU_REDIS_URL", ""),
        rabbitmq_url=process_env.get("KEFU_RABBITMQ_URL", ""),
        rabbitmq_queue=process_env.get("KEFU_RABBITMQ_QUEUE", "kefu.turns"),
        rasa_token=rasa_token,
        model_server=process_env.get("KEFU_MODEL_SERVER", "false"),
        model_server_url=process_env.get("KEFU_MODEL_SERVER_URL", ""),
        model_pull_seconds=process_env.get("KEFU_MODEL_PULL_SECONDS", "5"),
    )
    channels = channel_credentials(settings) if all_channels else {"rest": None}
    action_endpoint = {"url": settings.action_url, "token": action_token}
    endpoints = write_endpoints(work_dir, settings, action_endpoint, event_broker, channels)
    stack = RasaStack(settings.rasa_url, settings.action_url, database_url, model, work_dir, rasa_token, action_token)
    commands = {
        "actions": [sys.executable, "-m", "bot.action_server"],
        "rasa": [
            sys.executable, "-m", "bot.server", "--model", str(model),
            "--endpoints", str(endpoints), "--credentials", str(work_dir / "credentials.yml"),
        ],
    }  # fmt: skip
    try:
        for name, command in commands.items():
            with (work_dir / f"{name}.log").open("wb") as log:
                stack.processes.append(
                    subprocess.Popen(
                        command,
                        cwd=PROJECT_ROOT,
                        env=process_env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        _wait_healthy(stack, f"http://127.0.0.1:{action_port}/health", stack.processes[0], lambda _: True)
        status = f"{stack.rasa_url}/status?token={rasa_token}"
        _wait_healthy(stack, status, stack.processes[1], lambda r: bool(r.json().get("model_id")))
    except BaseException:
        stack.stop()
        raise
    return stack


@contextmanager
def running_stack(
    database_url: str,
    work_dir: Path,
    event_broker: bool | dict[str, Any] | None = None,
    all_channels: bool = False,
    env: dict[str, str] | None = None,
    model: Path | None = None,
) -> Iterator[RasaStack]:
    """:func:`start_stack` as a context manager that always stops the servers."""
    stack = start_stack(database_url, work_dir, event_broker, all_channels, env, model)
    try:
        yield stack
    finally:
        stack.stop()
