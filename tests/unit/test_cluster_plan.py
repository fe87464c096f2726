"""The cluster plan: its replicas and ports, the HAProxy configuration HAProxy itself accepts, the refusals, and the
compose.yaml that describes the same processes (no Docker engine runs it here, so it is read, not started)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from router.cli import app
from router.cluster import REPLICAS, cluster_problem, compose_haproxy_config, haproxy_config, plan_cluster, procfile
from router.runner import process_environment
from router.settings import PROJECT_ROOT, Settings
from router.web.model_server import MODEL_SERVER_PATH

POSTGRES = "postgresql://kefu@127.0.0.1:5432/kefu"
REDIS = "redis://127.0.0.1:6379/3"
RABBITMQ = "amqp://kefu:secret@127.0.0.1:5672/"


def cluster_settings(tmp_path: Path, **changes: object) -> Settings:
    values: dict[str, object] = {
        "database_url": POSTGRES,
        "tracker_store_url": POSTGRES + "_tracker",
        "redis_url": REDIS,
        "rabbitmq_url": RABBITMQ,
        "model_server": True,
        "var_dir": tmp_path,
        "rasa_token": "rasa-token",
        "action_token": "action-token",
    }
    return Settings(_env_file=None, **{**values, **changes})


def test_each_server_has_its_replicas_on_the_ports_above_the_one_its_proxy_keeps(tmp_path: Path) -> None:
    settings = cluster_settings(tmp_path, web_port=9000, rasa_port=7000, action_port=7100)
    plan = plan_cluster(settings)
    assert [p.name for p in plan.processes] == [
        "rasa-1", "rasa-2", "actions-1", "actions-2", "web-1", "web-2", "worker-1", "worker-2", "worker-3",
        "turns-1", "turns-2",
    ]  # fmt: skip
    assert plan.of_kind("turns")[0].command == "kefu turns consume" and plan.of_kind("turns")[0].env == {}
    assert {(f.kind, f.port): [port for _, _, port in f.replicas] for f in plan.frontends} == {
        ("rasa", 7000): [7001, 7002],
        ("actions", 7100): [7101, 7102],
        ("web", 9000): [9001, 9002],
    }
    assert plan.of_kind("web")[1].env == {
        "KEFU_WEB_HOST": "127.0.0.1",
        "KEFU_WEB_PORT": "9002",
        "KEFU_PUBLIC_URL": "http://127.0.0.1:9000",
    }
    assert plan.ports[7002] == "KEFU_RASA_PORT"
    lines = procfile(plan).splitlines()
    assert lines[0].startswith("rasa-1: KEFU_RASA_HOST=127.0.0.1 KEFU_RASA_PORT=7001 python")
    assert "turns-2: kefu turns consume" in lines


def test_every_process_of_a_run_agrees_on_the_model_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_MODEL_SERVER", raising=False)
    files = {"endpoints": tmp_path / "endpoints.yml", "credentials": tmp_path / "credentials.yml"}
    settings = cluster_settings(tmp_path, **files)
    assert process_environment(settings)["KEFU_MODEL_SERVER"] == "true"
    laptop = settings.copy(update={"model_server": False})
    assert process_environment(laptop)["KEFU_MODEL_SERVER"] == "false"


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="HAProxy is not installed (apt-get install haproxy)")
def test_haproxy_accepts_the_configuration_and_only_the_web_frontend_follows_the_public_host(tmp_path: Path) -> None:
    plan = plan_cluster(cluster_settings(tmp_path, web_host="0.0.0.0"))
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy_config(plan.frontends, plan.stats_socket), encoding="utf-8")
    checked = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert "bind 0.0.0.0:8000" in text and "bind 127.0.0.1:5005" in text and "bind 127.0.0.1:5055" in text
    assert text.count("balance roundrobin") == 3 and "cookie" not in text  # no stickiness
    assert "server rasa-2 127.0.0.1:5007 check" in text


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"database_url": "sqlite:///kefu.db"}, "KEFU_DATABASE_URL"),
        ({"tracker_store_url": ""}, "KEFU_TRACKER_STORE_URL"),
        ({"redis_url": ""}, "KEFU_REDIS_URL"),
        ({"rabbitmq_url": ""}, "KEFU_RABBITMQ_URL"),
        ({"model_server": False}, "KEFU_MODEL_SERVER"),
    ],
)
def test_a_cluster_on_sqlite_or_without_redis_rabbitmq_or_the_model_server_is_refused_in_one_line(
    tmp_path: Path, changes: dict[str, str], named: str
) -> None:
    problem = cluster_problem(cluster_settings(tmp_path, **changes))
    assert problem is not None and named in str(problem) and "\n" not in str(problem)


def test_kefu_run_cluster_on_the_laptop_defaults_stops_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KEFU_DATABASE_URL", "KEFU_TRACKER_STORE_URL", "KEFU_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["run", "--cluster", "--no-train"])
    assert result.exit_code == 1
    assert "needs PostgreSQL" in result.output and "KEFU_DATABASE_URL" in result.output
    assert not (tmp_path / "Procfile.cluster").exists()


def test_compose_yaml_names_the_processes_and_engines_of_kefu_run_cluster() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    plan = plan_cluster(Settings(_env_file=None, rabbitmq_url=RABBITMQ))
    assert set(services) == {p.name for p in plan.processes} | {"proxy", "postgres", "redis", "rabbitmq"}
    for process in plan.processes:
        assert process.command in services[process.name]["command"].replace("\n", " ") or (
            process.kind == "rasa" and "python -m bot.server" in services[process.name]["command"]
        ), process.name
    assert sum(1 for name in services if name.startswith("worker")) == REPLICAS["worker"]
    environment = services["web-1"]["environment"]
    assert environment["KEFU_DATABASE_URL"].startswith("postgresql://")
    assert environment["KEFU_TRACKER_STORE_URL"].startswith("postgresql://")
    assert environment["KEFU_REDIS_URL"].startswith("redis://")
    assert environment["KEFU_RABBITMQ_URL"].startswith("amqp://")
    assert environment["KEFU_MODEL_SERVER"] == "true"
    assert environment["KEFU_MODEL_SERVER_URL"] == f"http://proxy:8000{MODEL_SERVER_PATH}"  # every Rasa, any web app
    assert services["proxy"]["image"].startswith("haproxy")
    assert [name for name, service in services.items() if service.get("ports")] == ["proxy"]


def test_the_compose_haproxy_configuration_is_the_one_the_template_makes() -> None:
    current = compose_haproxy_config()
    checked_in = (PROJECT_ROOT / "deploy" / "haproxy.cfg").read_text(encoding="utf-8")
    assert checked_in == current, "regenerate it: python -m router.cluster > deploy/haproxy.cfg"
