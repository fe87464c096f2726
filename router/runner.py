"""``kefu run``: start every kefu process under honcho, wait until each answers, then show where to go."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from router.cluster import ClusterPlan, health_urls, procfile_commands, replicas_down, write_files
from router.crm.seed import DemoLogin
from router.settings import Settings
from router.web.model_server import MODEL_SERVER_PATH

# Rasa's lock keys are ``kefu:lock:<sender id>``, apart from the web app's flood limit keys in the same Redis.
LOCK_KEY_PREFIX = "kefu"


@dataclass(frozen=True)
class Service:
    """A process of ours and the URL that answers once it is ready."""

    name: str
    health_url: str


def services(settings: Settings, cluster: ClusterPlan | None = None) -> list[Service]:
    """What `kefu run` starts, in the order people care about; with a cluster, each replica and the proxy."""
    if cluster is not None:
        return [Service(name, url) for name, url in health_urls(settings, cluster).items()]
    return [
        Service("web app", f"{settings.web_url}/healthz"),
        Service("Rasa server", f"{settings.rasa_url.rstrip('/')}/status?token={quote(settings.rasa_token, safe='')}"),
        Service("action server", f"{settings.action_url.removesuffix('/webhook')}/health"),
    ]


def tracker_store_endpoint(database_url: str) -> dict[str, str]:
    """Rasa's ``tracker_store`` entry: kefu's store (bot/tracker_store.py), Rasa's table at less cost a turn."""
    url = make_url(database_url)
    store = {"type": "bot.tracker_store.KefuTrackerStore", "dialect": url.get_backend_name()}
    if url.get_backend_name() == "sqlite":
        return {**store, "db": str(url.database)}
    # Rasa hands a custom store's ``url`` to SQLTrackerStore as its host, which takes a whole URL there.
    return {**store, "url": url.render_as_string(hide_password=False)}


def lock_store_endpoint(redis_url: str) -> dict[str, Any]:
    """Rasa's ``lock_store`` entry: its RedisLockStore made atomic (bot/lock_store.py), so one turn per conversation
    runs at a time across every Rasa."""
    url = urlsplit(redis_url)
    store: dict[str, Any] = {
        # Rasa's RedisLockStore, each change to a lock made atomic: two Rasa processes may take tickets at once.
        "type": "bot.lock_store.AtomicRedisLockStore",
        "url": url.hostname or "localhost",
        "port": url.port or 6379,
        "db": int(url.path.strip("/") or 0),
        "key_prefix": LOCK_KEY_PREFIX,
        "use_ssl": url.scheme == "rediss",
    }
    if url.username:
        store["username"] = unquote(url.username)
    if url.password:
        store["password"] = unquote(url.password)
    return store


def rasa_stores(settings: Settings) -> dict[str, Any]:
    """Where Rasa keeps conversations and their locks: the ``tracker_store`` and, with Redis, ``lock_store``.

    Without Redis, Rasa's in-memory lock serves its one process; several Rasa processes need the shared lock.
    """
    stores: dict[str, Any] = {"tracker_store": tracker_store_endpoint(settings.tracker_database_url)}
    if settings.redis_url:
        stores["lock_store"] = lock_store_endpoint(settings.redis_url)
    return stores


def event_broker_endpoint(rabbitmq_url: str, queue: str) -> dict[str, Any]:
    """Rasa's ``event_broker`` entry for the turn stream: its Pika broker into the durable queue ``queue``.

    Rasa 3.6's broker declares the queue durable, publishes persistent messages with publisher confirms, and keeps
    the events it could not publish to send them once reconnected; ``bot/pika_broker.py`` makes a turn's answer wait
    for RabbitMQ's confirm. Rasa logs ``url`` as it is, so it goes without the credentials: Rasa puts
    ``username:password`` into it itself, as given, which is why they stay percent-encoded as the URL spells them.
    """
    url = urlsplit(rabbitmq_url)
    port = url.port or (5671 if url.scheme == "amqps" else 5672)
    host = f"[{url.hostname}]" if ":" in str(url.hostname) else str(url.hostname)
    username, _, password = url.netloc.rpartition("@")[0].partition(":")
    return {
        "type": "bot.pika_broker.ConfirmedPikaEventBroker",
        "url": urlunsplit(url._replace(netloc=f"{host}:{port}")),
        "port": port,
        "username": username,
        "password": password,
        "exchange_name": queue,
        "queues": [queue],
    }


def model_server_endpoint(settings: Settings) -> dict[str, Any]:
    """Rasa's ``models`` entry: pull the active model from the web app's model server every few seconds.

    Rasa sends the entry's ``headers`` with every pull, so the token is a header, never part of a logged URL.
    """
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::") else settings.web_host
    return {
        "url": settings.model_server_url or f"http://{host}:{settings.web_port}{MODEL_SERVER_PATH}",
        "wait_time_between_pulls": settings.model_pull_seconds,
        "headers": {"Authorization": f"Bearer {settings.rasa_token}"},
    }


def action_endpoint(settings: Settings) -> dict[str, str]:
    """Rasa's ``action_endpoint``: the action server, and the token Rasa sends it (as ``?token=``) on every call."""
    return {"url": settings.action_url, "token": settings.action_token}


def channel_credentials(settings: Settings) -> dict[str, Any]:
    """Rasa's input channels: the repo's ``credentials.yml``, without the REST channel unless the settings want it.

    The REST channel takes any sender id (``telegram:<chat>``, ``web:<uuid>``), so it is a development tool:
    off in production unless ``KEFU_REST_CHANNEL=true``.
    """
    credentials = yaml.safe_load((settings.project_dir / "credentials.yml").read_text(encoding="utf-8"))
    if not settings.rest_channel_enabled:
        credentials.pop("rest", None)
    return credentials


def _write_private(path: Path, content: dict[str, Any]) -> Path:
    # The endpoints file holds the action token: readable by its owner only, from the moment it exists.
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def write_endpoints(settings: Settings) -> Path:
    """Rasa's endpoints.yml with the action server URL and token taken from kefu's settings (with
    ``KEFU_RABBITMQ_URL`` the turn stream, with ``KEFU_MODEL_SERVER`` the model server)."""
    endpoints = yaml.safe_load((settings.project_dir / "endpoints.yml").read_text(encoding="utf-8"))
    endpoints["action_endpoint"] = action_endpoint(settings)
    # A persistent tracker store: promoting a model (PUT /model) and restarts keep every conversation.
    endpoints.update(rasa_stores(settings))
    if settings.rabbitmq_url:
        # The turns go through RabbitMQ to `kefu turns consume` instead of from each Rasa straight to the CRM.
        endpoints["event_broker"] = event_broker_endpoint(settings.rabbitmq_url, settings.rabbitmq_queue)
    if settings.model_server:
        # Every Rasa process follows the registry by itself; `make run` keeps one Rasa reloaded with PUT /model.
        endpoints["models"] = model_server_endpoint(settings)
    return _write_private(settings.var_dir / "endpoints.yml", endpoints)


def write_credentials(settings: Settings) -> Path:
    """Rasa's credentials.yml for this run: the channels :func:`channel_credentials` keeps."""
    return _write_private(settings.var_dir / "credentials.yml", channel_credentials(settings))


def process_environment(settings: Settings) -> dict[str, str]:
    """The environment every child process gets: our settings made explicit, telemetry off."""
    env = dict(os.environ)
    env.update(
        {
            "KEFU_DATABASE_URL": settings.database_url,
            "KEFU_RASA_HOST": settings.rasa_host,
            "KEFU_RASA_PORT": str(settings.rasa_port),
            "KEFU_RASA_URL": settings.rasa_url,
            "KEFU_RASA_TOKEN": settings.rasa_token,
            "KEFU_ACTION_HOST": settings.action_host,
            "KEFU_ACTION_PORT": str(settings.action_port),
            "KEFU_ACTION_URL": settings.action_url,
            "KEFU_ACTION_TOKEN": settings.action_token,
            "KEFU_WEB_HOST": settings.web_host,
            "KEFU_WEB_PORT": str(settings.web_port),
            "KEFU_ENDPOINTS": str(settings.endpoints or write_endpoints(settings)),
            "KEFU_CREDENTIALS": str(settings.credentials or write_credentials(settings)),
            "KEFU_NLU_MODEL": str(settings.nlu_model),
            # Whether Rasa pulls its model (endpoints), the web apps serve it and a promotion skips PUT /model:
            # every process of a run must agree, whether the setting came from the environment or the .env file.
            "KEFU_MODEL_SERVER": "true" if settings.model_server else "false",
            "RASA_TELEMETRY_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start(settings: Settings, cluster: ClusterPlan | None = None) -> subprocess.Popen:
    """honcho running the Procfile (a cluster's, written into var/, when given), in our process group so Ctrl-C
    reaches every child."""
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or "honcho"
    if cluster:
        # A cluster's processes are told apart by honcho's prefix ("rasa-2 | …"); a laptop's few need none.
        command = ["--procfile", str(write_files(settings, cluster)), "start"]
    else:
        procfile = settings.project_dir / "Procfile"
        command = ["--procfile", str(procfile), "--no-prefix", "start", *procfile_commands(settings)]
    return subprocess.Popen(
        [honcho, *command],
        cwd=settings.project_dir,
        env=process_environment(settings),
    )


def wait_until_healthy(
    alive: Callable[[], bool],
    settings: Settings,
    console: Console,
    timeout_s: float = 300.0,
    cluster: ClusterPlan | None = None,
) -> list[str]:
    """Names of the services still not answering when ``timeout_s`` ran out or ``alive()`` said a process died; a
    cluster is ready once its proxy, too, sends requests to every replica."""
    waiting = {service.name: service for service in services(settings, cluster)}
    deadline = time.monotonic() + timeout_s
    with console.status("Starting kefu…") as status, httpx.Client(timeout=2.0) as client:
        while (not_ready := _not_ready(waiting, cluster)) and time.monotonic() < deadline and alive():
            for name, service in list(waiting.items()):
                try:
                    if client.get(service.health_url).status_code == 200:
                        del waiting[name]
                        console.log(f"[green]✓[/] {name} is up")
                except httpx.HTTPError:
                    pass
            status.update(f"Waiting for {', '.join(not_ready)}…")
            time.sleep(0.5)
    return not_ready


def _not_ready(waiting: dict[str, Service], cluster: ClusterPlan | None) -> list[str]:
    if waiting or cluster is None:
        return list(waiting)
    return [f"{name} (behind the proxy)" for name in replicas_down(cluster)]


def show_urls(settings: Settings, logins: list[DemoLogin], console: Console) -> None:
    """The table a newcomer reads after ``make run``."""
    table = Table(title="kefu is running — Ctrl-C stops everything", show_header=False)
    web = settings.web_url
    for label, url in [
        ("Web chat (customers)", f"{web}/chat"),
        ("Agent console", f"{web}/console"),
        ("Admin", f"{web}/admin"),
        ("Analytics", f"{web}/analytics"),
        ("API docs", f"{web}/api/docs"),
    ]:
        table.add_row(label, url)
    if settings.rest_channel_enabled:
        table.add_row("Rasa REST webhook (this machine only)", f"{settings.rasa_url.rstrip('/')}/webhooks/rest/webhook")
    console.print(table)
    if settings.env == "development":
        show_logins(logins, console)


def show_logins(logins: list[DemoLogin], console: Console) -> None:
    """The demo logins the seed just created, once (they are stored only hashed), or where to reset one."""
    if not logins:
        console.print("Demo passwords were shown when the demo was created; reset one with `kefu user passwd NAME`.")
        return
    logins_table = Table(title="Demo logins — shown only this once", show_header=True)
    for column in ("user", "password", "role"):
        logins_table.add_column(column)
    for login in logins:
        logins_table.add_row(*login)
    console.print(logins_table)
    console.print("Each demo user chooses their own password at first login; `kefu user passwd NAME` resets one.")
