"""The web app's model server speaks Rasa's protocol (ETag, If-None-Match, ``filename``) to callers with the token
only, and `kefu run` points Rasa at it only when the model server is on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from router.bootstrap import Kefu
from router.crm.models import ModelStatus
from router.runner import write_endpoints
from router.settings import Settings
from router.training import registry
from router.web.app import create_app
from router.web.model_server import MODEL_SERVER_PATH
from tests.support.listening import free_port
from tests.support.models import register_version

TOKEN = "the-rasa-token-kefu-run-shares"


@pytest.fixture
def model_server(kefu_any_db: Kefu, tmp_path: Path) -> TestClient:
    settings = kefu_any_db.settings
    settings.models_dir, settings.rasa_url = tmp_path / "models", f"http://127.0.0.1:{free_port()}"
    settings.model_server, settings.rasa_token = True, TOKEN
    return TestClient(create_app(kefu_any_db))


def _promote(kefu: Kefu, version: str) -> None:
    settings = kefu.settings
    registry.promote(kefu.uow, version, settings.models_dir, settings.rasa_url, None, rasa_pulls=True)


def test_callers_without_the_token_get_no_model(model_server: TestClient, kefu_any_db: Kefu) -> None:
    register_version(kefu_any_db, "v1", ModelStatus.candidate)
    _promote(kefu_any_db, "v1")
    forged = [
        {},
        {"Authorization": "Bearer guessed"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ]
    for headers in forged:
        answer = model_server.get(MODEL_SERVER_PATH, headers=headers)
        assert answer.status_code == 401 and answer.content.startswith(b"{"), (headers, answer.status_code)
    # The token belongs in a header: in the query string (which access logs keep) it opens nothing.
    assert model_server.get(MODEL_SERVER_PATH, params={"token": TOKEN}).status_code == 401
    assert model_server.get(MODEL_SERVER_PATH, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_active_model_is_sent_once_then_answered_not_modified(model_server: TestClient, kefu_any_db: Kefu) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    register_version(kefu_any_db, "v1")
    register_version(kefu_any_db, "v2")
    assert model_server.get(MODEL_SERVER_PATH, headers=auth).status_code == 404, "nothing promoted yet"

    _promote(kefu_any_db, "v1")
    # Rasa's first pull sends the random fingerprint it made up at start.
    first = model_server.get(MODEL_SERVER_PATH, headers={**auth, "If-None-Match": "3f2a9c0e"})
    v1 = registry.version_path(kefu_any_db.settings.models_dir, registry.NLU, "v1").read_bytes()
    assert first.status_code == 200 and first.content == v1
    assert first.headers["filename"] == "v1.tar.gz"
    etag = first.headers["etag"]
    for sent_back in (etag, f"W/{etag}", f'"older", {etag}'):
        unchanged = model_server.get(MODEL_SERVER_PATH, headers={**auth, "If-None-Match": sent_back})
        assert (unchanged.status_code, unchanged.content) == (304, b""), sent_back

    _promote(kefu_any_db, "v2")
    changed = model_server.get(MODEL_SERVER_PATH, headers={**auth, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["filename"] == "v2.tar.gz"
    assert changed.headers["etag"] != etag


def test_the_model_server_is_off_unless_switched_on(kefu_any_db: Kefu) -> None:
    kefu_any_db.settings.rasa_token = TOKEN
    client = TestClient(create_app(kefu_any_db))
    assert client.get(MODEL_SERVER_PATH, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_kefu_run_points_rasa_at_the_model_server_only_when_it_is_on(tmp_path: Path) -> None:
    laptop = yaml.safe_load(write_endpoints(Settings(_env_file=None, var_dir=tmp_path, rasa_token="t")).read_text())
    assert "models" not in laptop, "make run keeps reloading its one Rasa with PUT /model"
    cluster = Settings(
        _env_file=None, var_dir=tmp_path, rasa_token="t", model_server=True, model_pull_seconds=3, web_host="0.0.0.0"
    )
    assert yaml.safe_load(write_endpoints(cluster).read_text())["models"] == {
        "url": f"http://127.0.0.1:8000{MODEL_SERVER_PATH}",
        "wait_time_between_pulls": 3,
        "headers": {"Authorization": "Bearer t"},
    }
