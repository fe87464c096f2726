"""`kefu run` (what `make run` calls) starts every process, answers 你好/hello over REST and the web chat, shows only
the web app's port beyond loopback, keeps Rasa's API and the action server behind tokens, and Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from router.internal_tokens import TOKENS_FILE
from router.settings import get_settings
from tests.support.listening import descendants, is_loopback, listening

pytestmark = pytest.mark.rasa


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_kefu_run_serves_chinese_and_english_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    models_dir = get_settings().models_dir
    if not any((models_dir / "nlu").glob("*.tar.gz")):
        pytest.skip("no trained Rasa model: `make test` trains it first (kefu train --if-missing)")
    ports = {name: free_port() for name in ("KEFU_WEB_PORT", "KEFU_RASA_PORT", "KEFU_ACTION_PORT")}
    env = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}",
        "KEFU_VAR_DIR": str(tmp_path / "var"),
        "COLUMNS": "200",
        # The web app faces the network, as it would on a server; nothing else may.
        "KEFU_WEB_HOST": "0.0.0.0",
        "KEFU_PUBLIC_URL": f"http://127.0.0.1:{ports['KEFU_WEB_PORT']}",
    }
    for name in ("KEFU_RASA_TOKEN", "KEFU_ACTION_TOKEN", "KEFU_RASA_URL", "KEFU_ACTION_URL", "KEFU_ENV"):
        env.pop(name, None)
    log_path = tmp_path / "kefu-run.log"
    with log_path.open("w") as log:
        kefu = subprocess.Popen(
            [sys.executable, "-m", "router", "run", "--no-train"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while "resets one" not in log_path.read_text() and time.monotonic() < deadline:
            assert kefu.poll() is None, log_path.read_text()[-3000:]
            time.sleep(1)
        output = log_path.read_text()
        assert "kefu is running" in output, output[-3000:]
        assert f"http://127.0.0.1:{ports['KEFU_WEB_PORT']}/console" in output
        password = re.search(r"admin\s*│\s*(\S+)\s*│\s*admin", output).group(1)
        assert "kefu-demo" not in output and "shown only this once" in output
        web = httpx.Client(base_url=f"http://127.0.0.1:{ports['KEFU_WEB_PORT']}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/login").text).group(1)
        login = web.post("/login", data={"username": "admin", "password": password, "csrf_token": csrf})
        assert login.headers["location"].startswith("/account/password")  # the demo password must be replaced

        webhook = f"http://127.0.0.1:{ports['KEFU_RASA_PORT']}/webhooks/rest/webhook"
        for sender, greeting in [("run-zh", "你好"), ("run-en", "hello")]:
            replies = httpx.post(webhook, json={"sender": sender, "message": greeting}, timeout=60).json()
            assert replies and all(reply.get("text") for reply in replies), replies
        chinese = httpx.post(webhook, json={"sender": "run-zh", "message": "你好"}, timeout=60).json()
        assert any("\u4e00" <= char <= "\u9fff" for char in chinese[0]["text"])

        with httpx.Client(base_url=f"http://127.0.0.1:{ports['KEFU_WEB_PORT']}", timeout=60) as browser:
            browser.get("/chat").raise_for_status()
            answer = browser.post("/webchat/messages", json={"message": "hello"})
            assert answer.status_code == 200 and answer.json()["messages"], answer.text[:300]

        sockets = listening(descendants(kefu.pid))
        assert {port for _, port in sockets} == set(ports.values()), sockets
        public = {(address, port) for address, port in sockets if not is_loopback(address)}
        assert public == {("0.0.0.0", ports["KEFU_WEB_PORT"])}

        # Development made the internal tokens up at random; without them Rasa's API and the actions refuse.
        tokens = json.loads((tmp_path / "var" / TOKENS_FILE).read_text())
        rasa = f"http://127.0.0.1:{ports['KEFU_RASA_PORT']}"
        assert httpx.get(f"{rasa}/conversations/run-zh/tracker", timeout=60).status_code == 401
        tracker = httpx.get(f"{rasa}/conversations/run-zh/tracker", params={"token": tokens["rasa"]}, timeout=60)
        assert [e["text"] for e in tracker.json()["events"] if e["event"] == "user"] == ["你好", "你好"]
        action_server = f"http://127.0.0.1:{ports['KEFU_ACTION_PORT']}/webhook"
        assert httpx.post(action_server, json={"next_action": "action_check_status"}, timeout=60).status_code == 401
    finally:
        os.killpg(kefu.pid, signal.SIGINT)
        try:
            kefu.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(kefu.pid, signal.SIGKILL)
            raise
    for port in ports.values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"something still listens on {port} after Ctrl-C"
