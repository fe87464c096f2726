"""Two real Rasa replicas on one PostgreSQL CRM pull their model from a real web app's model server: started with
no model file they get the active one, a promotion and a rollback on the admin page reach both within 15 s, and
an unchanged model is answered 304 rather than sent again."""

from __future__ import annotations

import gzip
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from router.bootstrap import Kefu
from router.crm.models import ModelStatus
from router.training import registry
from router.web.model_server import MODEL_SERVER_PATH
from tests.support.crm import DEMO_PASSWORD, make_kefu, seed_demo_with_chosen_passwords
from tests.support.databases import fresh_postgres_database
from tests.support.listening import free_port
from tests.support.rasa_stack import RasaStack, start_stack, trained_model
from tests.support.web import csrf_of, form_login, running_web_app

pytestmark = [pytest.mark.rasa, pytest.mark.postgres]

PULL_SECONDS = 2
REACH_WITHIN_S = 15
PULL_LINE = re.compile(rf'"GET {re.escape(MODEL_SERVER_PATH)} HTTP/1\.1" (\d{{3}})')


@dataclass(frozen=True)
class Deployment:
    """The web app, the replicas pulling from it, and the token they share."""

    kefu: Kefu
    web_url: str
    web_log: Path
    replicas: list[RasaStack]
    token: str

    def pulls(self, status: int) -> int:
        """How many model pulls the web app's access log shows answered with ``status``."""
        return [int(code) for code in PULL_LINE.findall(self.web_log.read_text())].count(status)


def _register(kefu: Kefu, version: str, model: Path) -> None:
    with kefu.uow() as uow:
        registry.register(uow.session, registry.NLU, version, model, "hash", {}, ModelStatus.candidate, None)
        uow.commit()


def _start_replicas(database_url: str, work_dir: Path, env: dict[str, str]) -> list[RasaStack]:
    """Two Rasa + action server pairs started side by side, each with an empty models directory."""

    def start(name: str) -> RasaStack:
        never_trained_here = work_dir / name / "models" / "nlu" / "active.tar.gz"
        return start_stack(database_url, work_dir / name, env=env, model=never_trained_here)

    with ThreadPoolExecutor(2) as pool:
        starting = [pool.submit(start, name) for name in ("replica-a", "replica-b")]
    started = [future.result() for future in starting if future.exception() is None]
    failed = [future.exception() for future in starting if future.exception() is not None]
    if failed:
        for stack in started:
            stack.stop()
        raise failed[0]
    return started


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, postgres_server: str) -> Iterator[Deployment]:
    work_dir = tmp_path_factory.mktemp("model-server")
    token = secrets.token_urlsafe(24)
    with fresh_postgres_database(postgres_server) as database_url:
        kefu = make_kefu(
            database_url,
            work_dir,
            models_dir=work_dir / "training-machine",
            model_server=True,
            rasa_token=token,
            rasa_url=f"http://127.0.0.1:{free_port()}",
            secret_key=uuid.uuid4().hex,
        )
        with kefu.uow() as uow:
            seed_demo_with_chosen_passwords(uow.session, kefu.settings.data_dir)
            uow.commit()
        # Two versions of the same assistant with different bytes: the replicas' model_file tells them apart.
        trained = trained_model()
        v1 = registry.version_path(kefu.settings.models_dir, registry.NLU, "v1")
        v1.parent.mkdir(parents=True)
        shutil.copyfile(trained, v1)
        v2 = v1.with_name("v2.tar.gz")
        v2.write_bytes(gzip.compress(gzip.decompress(trained.read_bytes()), mtime=2))
        _register(kefu, "v1", v1)
        _register(kefu, "v2", v2)
        registry.promote(kefu.uow, "v1", kefu.settings.models_dir, kefu.settings.rasa_url, None, rasa_pulls=True)
        web_log = work_dir / "web.log"
        try:
            with running_web_app(
                kefu.settings, web_log, log_level="info", extra_env={"KEFU_MODEL_SERVER": "true"}
            ) as web_url:
                replica_env = {
                    "KEFU_RASA_TOKEN": token,
                    "KEFU_MODEL_SERVER": "true",
                    "KEFU_MODEL_SERVER_URL": f"{web_url}{MODEL_SERVER_PATH}",
                    "KEFU_MODEL_PULL_SECONDS": str(PULL_SECONDS),
                }
                replicas = _start_replicas(database_url, work_dir, replica_env)
                try:
                    yield Deployment(kefu, web_url, web_log, replicas, token)
                finally:
                    for replica in replicas:
                        replica.stop()
        finally:
            kefu.dispose()


def model_file(replica: RasaStack) -> str:
    """The model a replica serves, as its ``GET /status`` names it (the model server's ``filename``)."""
    response = replica.client.get(f"{replica.rasa_url}/status")
    response.raise_for_status()
    return response.json()["model_file"]


def wait_for(condition: Callable[[], bool], within_s: float, what: str) -> float:
    """Seconds until ``condition`` held; fails the test if it did not within ``within_s``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within_s:
            pytest.fail(f"{what} not within {within_s} s")
        time.sleep(0.25)
    return time.monotonic() - started


def switch_on_the_admin_page(deployment: Deployment, version: str, action: str) -> str:
    """Promote or roll back ``version`` as an admin does; the notice the page shows."""
    with httpx.Client(base_url=deployment.web_url, timeout=60) as admin:
        assert form_login(admin, "admin", DEMO_PASSWORD).status_code in (200, 303)
        token = csrf_of(admin, "/admin/models")
        answer = admin.post(f"/admin/models/{version}/{action}", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:500]
    return httpx.URL(answer.headers["location"]).params["notice"]


def test_replicas_started_without_model_files_serve_the_active_model(deployment: Deployment) -> None:
    for replica in deployment.replicas:
        assert not replica.model_path.exists()
        assert model_file(replica) == "v1.tar.gz"
        assert replica.send(f"web:{uuid.uuid4()}", "你好"), replica.logs()


def test_an_unchanged_model_is_answered_not_modified_and_not_sent_again(deployment: Deployment) -> None:
    sent, unchanged = deployment.pulls(200), deployment.pulls(304)
    wait_for(lambda: deployment.pulls(304) >= unchanged + 4, 4 * PULL_SECONDS + 10, "two pulls by each replica")
    assert deployment.pulls(200) == sent
    assert deployment.token not in deployment.web_log.read_text(), "the token travels in a header, never logged"


def test_a_promotion_and_a_rollback_reach_every_replica_within_15_s(deployment: Deployment) -> None:
    sent = deployment.pulls(200)
    for version, action in (("v2", "promote"), ("v1", "rollback")):
        notice = switch_on_the_admin_page(deployment, version, action)
        assert "every Rasa server pulls it" in notice, notice
        took = wait_for(
            lambda version=version: all(model_file(r) == f"{version}.tar.gz" for r in deployment.replicas),
            REACH_WITHIN_S,
            f"{version} on both replicas",
        )
        print(f"{action} {version}: both replicas serve it after {took:.1f} s")
    assert deployment.pulls(200) == sent + 4, "each replica downloads each new model once"
    for replica in deployment.replicas:
        assert replica.send(f"web:{uuid.uuid4()}", "你好"), replica.logs()


def test_the_model_server_refuses_callers_without_the_token(deployment: Deployment) -> None:
    url = f"{deployment.web_url}{MODEL_SERVER_PATH}"
    for headers in ({}, {"Authorization": "Bearer guessed"}, {"Authorization": f"Bearer {deployment.token[:-1]}"}):
        answer = httpx.get(url, headers=headers, timeout=30)
        assert answer.status_code == 401 and b"rasa" not in answer.content[:200].lower(), headers
    assert httpx.get(url, params={"token": "guessed"}, timeout=30).status_code == 401
