"""A conversation outlives a model hot reload and a Rasa restart with kefu's tracker store, as `kefu run` sets it up."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.bootstrap import bootstrap
from router.crm import migrate
from router.settings import Settings
from tests.support.rasa_stack import running_stack

pytestmark = pytest.mark.rasa


def _user_texts(tracker: dict) -> list[str]:
    return [event["text"] for event in tracker["events"] if event["event"] == "user"]


def test_conversation_survives_model_reload_and_restart(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'kefu.db'}"
    kefu = bootstrap(Settings(database_url=database_url, var_dir=tmp_path / "var"))
    migrate.upgrade(kefu.engine)
    kefu.dispose()
    sender = "web:6f1c2c57-0d38-4d7e-9a49-3b1f1d0c2a11"
    with running_stack(database_url, tmp_path / "stack", event_broker=False) as stack:
        assert stack.send(sender, "你好")
        assert stack.send(sender, "我要投诉")
        before = stack.tracker(sender)
        reload = stack.client.put(f"{stack.rasa_url}/model", json={"model_file": str(stack.model_path)})
        assert reload.status_code == 204, reload.text
        after_reload = stack.tracker(sender)
        assert _user_texts(after_reload) == ["你好", "我要投诉"]
        assert after_reload["active_loop"] == before["active_loop"]
        assert after_reload["slots"] == before["slots"]
    with running_stack(database_url, tmp_path / "stack", event_broker=False) as restarted:
        assert _user_texts(restarted.tracker(sender)) == ["你好", "我要投诉"]
        assert restarted.send(sender, "thanks")
        assert _user_texts(restarted.tracker(sender)) == ["你好", "我要投诉", "thanks"]
