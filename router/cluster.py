"""``kefu run --cluster``: several processes of each kind on PostgreSQL, Redis and RabbitMQ, behind HAProxy, as data.

The plan says which processes run, on which ports and with which environment; ``kefu run`` renders it into a
Procfile and an HAProxy configuration in ``var/``, and the cluster tests and benchmarks start the same plan. Each
kind of server keeps one address: HAProxy listens on the settings' ports (``KEFU_WEB_PORT`` for the public,
``KEFU_RASA_PORT`` and ``KEFU_ACTION_PORT`` on their private host) and spreads requests round-robin over the
replicas on the ports just above, with no stickiness. Any replica may serve any conversation because the
conversations live in PostgreSQL and each one's lock in Redis, which is why a cluster on SQLite is refused. A
cluster also needs the two settings that make the replicas' work survive and agree: RabbitMQ carrying the turns
(a Rasa killed with -9 has handed over every turn it answered) and the model server (a promotion reaches every Rasa,
not only the one the proxy hands ``PUT /model`` to).
"""

from __future__ import annotations

import csv
import shlex
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

from honcho.environ import parse_procfile
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.engine import make_url

from router.preflight import Problem
from router.settings import Settings

# How many of each Procfile entry a cluster runs; an entry not named here runs once.
REPLICAS: Mapping[str, int] = {"rasa": 2, "actions": 2, "web": 2, "worker": 3, "turns": 2}
# The Procfile's name of `kefu turns consume`, which runs only with KEFU_RABBITMQ_URL.
TURN_CONSUMER = "turns"
HAPROXY = "haproxy"
HAPROXY_TEMPLATE = "haproxy.cfg.j2"
REPLICA_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Server:
    """A Procfile entry that serves HTTP: the settings that place it, and the path that says it is healthy."""

    host_setting: str
    port_setting: str
    health_path: str


# The servers behind the proxy. Rasa's ``/`` answers once its model is loaded; the web app's ``/healthz`` also
# checks its database, so a web app that lost it gets no customers until it has it back.
SERVERS: Mapping[str, Server] = {
    "web": Server("KEFU_WEB_HOST", "KEFU_WEB_PORT", "/healthz"),
    "rasa": Server("KEFU_RASA_HOST", "KEFU_RASA_PORT", "/"),
    "actions": Server("KEFU_ACTION_HOST", "KEFU_ACTION_PORT", "/health"),
}


@dataclass(frozen=True)
class Process:
    """One process of the cluster: its Procfile name, what it runs, and the settings that differ from the rest's."""

    name: str
    kind: str
    command: str
    env: Mapping[str, str]
    port: int | None = None


@dataclass(frozen=True)
class Frontend:
    """Where the proxy takes one kind of server's requests, and the replicas it hands them to."""

    kind: str
    host: str
    port: int
    port_setting: str
    health_path: str
    replicas: tuple[tuple[str, str, int], ...]  # (name, host, port) of each replica


@dataclass(frozen=True)
class ClusterPlan:
    """Every process of a cluster and the proxy in front of them."""

    processes: tuple[Process, ...]
    frontends: tuple[Frontend, ...]
    haproxy_config: Path
    stats_socket: Path

    def of_kind(self, kind: str) -> list[Process]:
        """The replicas of one Procfile entry, in order."""
        return [process for process in self.processes if process.kind == kind]

    @property
    def ports(self) -> dict[int, str]:
        """Every port the cluster listens on, and the setting that moves it (replicas follow their proxy's port)."""
        return {
            port: frontend.port_setting
            for frontend in self.frontends
            for port in (frontend.port, *(replica_port for _, _, replica_port in frontend.replicas))
        }


def frontend_ports(settings: Settings) -> dict[str, tuple[str, int]]:
    """Where the proxy listens for each kind of server: the address the settings give that kind."""
    return {
        "web": (settings.web_host, settings.web_port),
        "rasa": (settings.rasa_host, settings.rasa_port),
        "actions": (settings.action_host, settings.action_port),
    }


def procfile_commands(settings: Settings) -> dict[str, str]:
    """The project's Procfile entries these settings run: one command per kind of process, the turn stream's
    consumer only when RabbitMQ carries the turns."""
    processes = parse_procfile((settings.project_dir / "Procfile").read_text(encoding="utf-8")).processes
    return {name: command for name, command in processes.items() if name != TURN_CONSUMER or settings.rabbitmq_url}


def plan_cluster(settings: Settings, replicas: Mapping[str, int] = REPLICAS) -> ClusterPlan:
    """The cluster for ``settings``: replica ``i`` of a server listens on its setting's port + ``i`` on loopback."""
    listen = frontend_ports(settings)
    processes: list[Process] = []
    frontends: list[Frontend] = []
    for kind, command in procfile_commands(settings).items():
        count = replicas.get(kind, 1)
        server = SERVERS.get(kind)
        kind_processes = []
        for index in range(1, count + 1):
            name = kind if count == 1 else f"{kind}-{index}"
            if server is None:
                kind_processes.append(Process(name, kind, command, {}))
                continue
            port = listen[kind][1] + index
            env = {server.host_setting: REPLICA_HOST, server.port_setting: str(port)}
            if kind == "web":  # links, cookies and redirects name the proxy, where customers and agents are
                env["KEFU_PUBLIC_URL"] = settings.web_url
            kind_processes.append(Process(name, kind, command, env, port))
        processes.extend(kind_processes)
        if server is not None:
            host, port = listen[kind]
            replica_addresses = tuple((p.name, REPLICA_HOST, p.port) for p in kind_processes if p.port is not None)
            frontends.append(Frontend(kind, host, port, server.port_setting, server.health_path, replica_addresses))
    return ClusterPlan(
        tuple(processes),
        tuple(frontends),
        settings.var_dir / "haproxy.cfg",
        settings.var_dir / "haproxy.sock",
    )


def cluster_problem(settings: Settings) -> Problem | None:
    """Why this machine cannot run a cluster on these settings, in one line, or None."""
    on_sqlite = [
        name
        for name, url in (
            ("KEFU_DATABASE_URL", settings.database_url),
            ("KEFU_TRACKER_STORE_URL", settings.tracker_database_url),
        )
        if make_url(url).get_backend_name() == "sqlite"
    ]
    if on_sqlite:
        return Problem(
            f"kefu run --cluster needs PostgreSQL, but {' and '.join(on_sqlite)} name SQLite, one process's file",
            "set both to postgresql:// URLs (the CRM and Rasa's conversations, shared by every replica)",
        )
    if not settings.redis_url:
        return Problem(
            "kefu run --cluster needs Redis for Rasa's conversation locks and the shared flood limits",
            "set KEFU_REDIS_URL, e.g. redis://127.0.0.1:6379/0",
        )
    if not settings.rabbitmq_url:
        return Problem(
            "kefu run --cluster needs RabbitMQ to carry the turns, so a replica killed mid-turn loses none",
            "set KEFU_RABBITMQ_URL, e.g. amqp://kefu:PASSWORD@127.0.0.1:5672/",
        )
    if not settings.model_server:
        return Problem(
            "kefu run --cluster needs the model server, or a promotion would reload only one Rasa replica",
            "set KEFU_MODEL_SERVER=true for every kefu process and command of the cluster (kefu model promote too)",
        )
    if shutil.which(HAPROXY) is None:
        return Problem("kefu run --cluster needs HAProxy in front of the replicas", "sudo apt-get install haproxy")
    return None


def haproxy_config(frontends: tuple[Frontend, ...], stats_socket: Path | None, docker_dns: bool = False) -> str:
    """HAProxy's configuration for ``frontends``, from ``haproxy.cfg.j2``; ``docker_dns`` finds the replicas by
    their Compose service names at Docker's resolver."""
    templates = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    template = templates.get_template(HAPROXY_TEMPLATE)
    return template.render(frontends=frontends, stats_socket=stats_socket, docker_dns=docker_dns)


def compose_haproxy_config() -> str:
    """The proxy's configuration in ``compose.yaml``: the same frontends, each replica a container of its own on
    its kind's usual port, found by its service name; the proxy's container publishes only the web port."""
    # compose.yaml's containers listen on these ports, whatever this machine's settings say.
    # Every field has a default, but Field(default, ...) passes it positionally, which mypy does not read as one.
    cluster = plan_cluster(Settings(web_port=8000, rasa_port=5005, action_port=5055))  # type: ignore[call-arg]
    frontends = tuple(
        replace(
            frontend, host="0.0.0.0", replicas=tuple((name, name, frontend.port) for name, _, _ in frontend.replicas)
        )
        for frontend in cluster.frontends
    )
    return haproxy_config(frontends, stats_socket=None, docker_dns=True)


def procfile(cluster: ClusterPlan) -> str:
    """A Procfile for honcho with every replica, its own settings in front of its command, and the proxy."""
    lines = []
    for process in cluster.processes:
        assignments = [f"{name}={shlex.quote(value)}" for name, value in process.env.items()]
        lines.append(f"{process.name}: {' '.join([*assignments, process.command])}")
    lines.append(f"proxy: {HAPROXY} -db -f {shlex.quote(str(cluster.haproxy_config))}")
    return "\n".join(lines) + "\n"


def write_files(settings: Settings, cluster: ClusterPlan) -> Path:
    """The cluster's HAProxy configuration and Procfile in ``var/``; returns the Procfile."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    cluster.haproxy_config.write_text(haproxy_config(cluster.frontends, cluster.stats_socket), encoding="utf-8")
    path = settings.var_dir / "Procfile.cluster"
    path.write_text(procfile(cluster), encoding="utf-8")
    return path


def haproxy_stats(stats_socket: Path) -> dict[str, dict[str, str]]:
    """HAProxy's ``show stat`` for each replica, by name: ``status`` (UP, DOWN, …), ``hrsp_2xx`` (its 2xx
    responses so far) and the rest of HAProxy's columns."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(stats_socket))
        connection.sendall(b"show stat\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    rows = csv.DictReader(answer.decode().removeprefix("# ").splitlines())
    return {row["svname"]: row for row in rows if row["svname"] not in ("FRONTEND", "BACKEND")}


def replicas_down(cluster: ClusterPlan) -> list[str]:
    """The replicas HAProxy does not send requests to yet (its health checks have not passed), or all of them while
    HAProxy itself does not answer."""
    names = [name for frontend in cluster.frontends for name, _, _ in frontend.replicas]
    try:
        stats = haproxy_stats(cluster.stats_socket)
    except OSError:
        return names
    return [name for name in names if stats.get(name, {}).get("status") != "UP"]


def health_urls(settings: Settings, cluster: ClusterPlan) -> dict[str, str]:
    """The URL that answers 200 once each replica is ready, and the proxy's public one."""
    rasa_status = f"/status?token={quote(settings.rasa_token, safe='')}"
    urls = {}
    for frontend in cluster.frontends:
        path = rasa_status if frontend.kind == "rasa" else frontend.health_path
        for name, host, port in frontend.replicas:
            urls[name] = f"http://{host}:{port}{path}"
    urls["proxy"] = f"{settings.web_url}/healthz"
    return urls


if __name__ == "__main__":
    # Regenerates deploy/haproxy.cfg, the proxy compose.yaml mounts: python -m router.cluster > deploy/haproxy.cfg
    print(compose_haproxy_config(), end="")
