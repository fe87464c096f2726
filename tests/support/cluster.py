"""kefu's cluster for tests and benchmarks: the processes of ``router/cluster.py``'s plan behind HAProxy.

:func:`running_cluster` starts each process of the plan on its own, as honcho would for ``kefu run --cluster``,
so a test may kill one replica (honcho would stop them all) and the others go on. :func:`cluster_env` is the
environment of a cluster on free ports, for that and for ``kefu run --cluster`` itself. Rasa pulls its model from
the model server, so the model is a version in the CRM's model store, promoted as ``kefu train`` leaves it
(:func:`promote_first_model`).
"""

from __future__ import annotations

import os
import random
import re
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from router import runner
from router.bootstrap import Kefu, bootstrap
from router.cluster import (
    HAPROXY,
    REPLICAS,
    ClusterPlan,
    cluster_problem,
    haproxy_stats,
    plan_cluster,
    write_files,
)
from router.crm import migrate
from router.crm.models import ModelStatus
from router.runner import process_environment
from router.settings import Settings
from router.training import registry
from tests.support.crm import seed_demo_with_chosen_passwords
from tests.support.listening import free_port, owner_of
from tests.support.markers import require_marker
from tests.support.rabbitmq import StreamQueues
from tests.support.rasa_stack import PROJECT_ROOT, START_TIMEOUT_SECONDS, _stop, rasa_env

# Many customers from one address (the tests' own) must not meet the flood limits meant for one person.
UNLIMITED = {
    "KEFU_WEBCHAT_IP_MESSAGES_PER_MINUTE": "1000000",
    "KEFU_WEBCHAT_NEW_SESSIONS_PER_HOUR": "1000000",
    "KEFU_WEBCHAT_MESSAGES_PER_MINUTE": "1000",
}
# How often each Rasa asks the model server whether the model changed (5 s by default).
MODEL_PULL_SECONDS = 2
FIRST_VERSION = "v1"


def free_port_block(size: int) -> int:
    """A port that is free with the ``size`` ports above it: a proxy port and its replicas' ports."""
    while True:
        base = free_port()
        if base + size < 65536 and all(_free(port) for port in range(base + 1, base + size + 1)):
            return base


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def other_redis_db(redis_url: str) -> str:
    """A Redis database other than the one most tests share: a cluster's flood limits key on 127.0.0.1."""
    return re.sub(r"/\d*$", f"/{random.randint(1, 15)}", redis_url)


def cluster_env(
    var_dir: Path, database_url: str, tracker_url: str, redis_url: str, turn_stream: StreamQueues, **more: str
) -> dict[str, str]:
    """``KEFU_*`` settings of a cluster on free ports with fresh internal tokens, on the given engines (the turns
    on the test's own RabbitMQ queue), its models in ``var_dir``."""
    return {
        "KEFU_ENV": "development",
        "KEFU_DATABASE_URL": database_url,
        "KEFU_TRACKER_STORE_URL": tracker_url,
        "KEFU_REDIS_URL": redis_url,
        "KEFU_RABBITMQ_URL": turn_stream.url,
        "KEFU_RABBITMQ_QUEUE": turn_stream.queue,
        "KEFU_MODEL_SERVER": "true",
        "KEFU_MODEL_PULL_SECONDS": str(MODEL_PULL_SECONDS),
        "KEFU_VAR_DIR": str(var_dir),
        "KEFU_MODELS_DIR": str(var_dir / "models"),
        "KEFU_WEB_PORT": str(free_port_block(REPLICAS["web"])),
        "KEFU_RASA_PORT": str(free_port_block(REPLICAS["rasa"])),
        "KEFU_ACTION_PORT": str(free_port_block(REPLICAS["actions"])),
        "KEFU_RASA_TOKEN": secrets.token_urlsafe(24),
        "KEFU_ACTION_TOKEN": secrets.token_urlsafe(24),
        "KEFU_SECRET_KEY": secrets.token_urlsafe(48),
        **UNLIMITED,
        **more,
    }


def haproxy_responses(stats_socket: Path) -> dict[str, int]:
    """2xx responses each replica gave through HAProxy so far, by replica name."""
    return {name: int(row["hrsp_2xx"] or 0) for name, row in haproxy_stats(stats_socket).items()}


@dataclass
class RunningCluster:
    """The processes of a plan, each in a session of its own, and the proxy."""

    settings: Settings
    env: Mapping[str, str]  # the KEFU_* settings the processes were started with, for commands run alongside
    plan: ClusterPlan
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def web_url(self) -> str:
        """The proxy's public address, where customers arrive."""
        return self.settings.web_url

    def responses(self) -> dict[str, int]:
        """2xx responses per replica through the proxy so far."""
        return haproxy_responses(self.plan.stats_socket)

    def kill(self, name: str, signum: int = signal.SIGKILL) -> None:
        """Send ``signum`` to the replica ``name`` (the process listening on its port)."""
        port = next(process.port for process in self.plan.processes if process.name == name)
        assert port is not None, f"{name} listens on no port"
        os.kill(owner_of(port), signum)

    def logs(self) -> str:
        """The tail of every process's log, for assertion messages."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def start(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        """Start one process, logging into ``<name>.log``."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command, cwd=PROJECT_ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        """Whether every process started is still running."""
        return all(process.poll() is None for process in self.processes.values())

    def wait_until_healthy(self) -> None:
        """Return once every replica answers and the proxy sends them requests, as ``kefu run`` waits; fail with
        the logs if a process exits or the time runs out."""
        alive = lambda: all(process.poll() is None for process in self.processes.values())  # noqa: E731
        not_ready = runner.wait_until_healthy(
            alive, self.settings, Console(quiet=True), START_TIMEOUT_SECONDS, self.plan
        )
        if not_ready or not alive():
            raise RuntimeError(f"not ready: {', '.join(not_ready) or 'a process exited'}\n{self.logs()}")

    def stop(self) -> None:
        """Stop every process and what it spawned."""
        for process in self.processes.values():
            _stop(process)


def cluster_settings(env: Mapping[str, str]) -> Settings:
    """The settings every process of a cluster started with ``env`` reads."""
    return Settings(_env_file=None, **{name.removeprefix("KEFU_").lower(): value for name, value in env.items()})


def register_model(kefu: Kefu, version: str, model: Path) -> None:
    """``model`` registered as a candidate ``version``, its bytes in the model store, as ``kefu train`` leaves one."""
    with kefu.uow() as uow:
        registry.register(uow.session, registry.NLU, version, model, "test", {}, ModelStatus.candidate, None)
        uow.commit()


def promote_first_model(settings: Settings, model: Path) -> None:
    """The CRM migrated and demo-seeded (each demo user with DEMO_PASSWORD), ``model`` the active version
    :data:`FIRST_VERSION` in the model store: what ``kefu run`` leaves before it starts the processes."""
    kefu = bootstrap(settings)
    try:
        migrate.upgrade(kefu.engine)
        with kefu.uow() as uow:
            seed_demo_with_chosen_passwords(uow.session, settings.data_dir)
            uow.commit()
        register_model(kefu, FIRST_VERSION, model)
        registry.promote(
            kefu.uow, FIRST_VERSION, settings.models_dir, settings.rasa_url, None, rasa_pulls=settings.model_server
        )
    finally:
        kefu.dispose()


@contextmanager
def running_cluster(
    env: Mapping[str, str], model: Path, replicas: Mapping[str, int] = REPLICAS
) -> Iterator[RunningCluster]:
    """The CRM as ``kefu run`` leaves it with ``model`` active (:func:`promote_first_model`), then every process of
    the plan for the settings in ``env`` (see :func:`cluster_env`) and HAProxy, healthy, until the block ends."""
    require_marker("cluster", "starts a kefu cluster")
    settings = cluster_settings(env)
    problem = cluster_problem(settings)
    assert problem is None, f"kefu run --cluster would refuse these settings: {problem}"
    promote_first_model(settings, model)
    plan = plan_cluster(settings, replicas)
    write_files(settings, plan)
    common = process_environment(settings) | dict(env) | {"PYTHONPATH": rasa_env()["PYTHONPATH"]}
    cluster = RunningCluster(settings, env, plan, settings.var_dir)
    try:
        for process in plan.processes:
            cluster.start(process.name, ["sh", "-c", f"exec {process.command}"], {**common, **process.env})
        cluster.start("proxy", [HAPROXY, "-db", "-f", str(plan.haproxy_config)], common)
        cluster.wait_until_healthy()
        yield cluster
    finally:
        cluster.stop()
