"""kefu as a cluster on real engines: ``kefu run --cluster`` behind HAProxy serves the web chat from both web apps
and both Rasa replicas; one customer's messages on both replicas at once leave one ordered conversation (Rasa's
RedisLockStore); 200 customers over the web chat and Telegram lose nothing and log nothing twice while a Rasa
replica is killed with -9 and PostgreSQL (a private server, never the machine's) is stopped for 10 s."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from router.db import build_engine
from router.web.webchat import CHAT_COOKIE, chat_cookie
from tests.support.cluster import RunningCluster, cluster_env, haproxy_responses, running_cluster
from tests.support.databases import fresh_postgres_database
from tests.support.listening import descendants, is_loopback, listening
from tests.support.rasa_stack import trained_model

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.rasa,
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="HAProxy is not installed (apt-get install haproxy)"),
]

TURN_TIMEOUT_S = 120


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A var/ directory short enough for HAProxy's stats socket (a Unix socket path holds 107 bytes at most)."""
    directory = Path(tempfile.mkdtemp(prefix="kefu-cluster-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def other_redis_db(redis_url: str) -> str:
    """A Redis database other than the one most tests share: the cluster's flood limits key on 127.0.0.1."""
    return re.sub(r"/\d*$", f"/{random.randint(1, 15)}", redis_url)


def session_headers(secret_key: str, session: str) -> dict[str, str]:
    """What a browser whose chat page set ``session`` sends with each message."""
    return {"Cookie": f"{CHAT_COOKIE}={chat_cookie(secret_key, session)}"}


def user_texts(rasa_url: str, rasa_token: str, sender_id: str) -> list[str]:
    """The customer's messages in the conversation's tracker, in order, as Rasa (through the proxy) tells it."""
    tracker = httpx.get(f"{rasa_url}/conversations/{sender_id}/tracker", params={"token": rasa_token}, timeout=60)
    tracker.raise_for_status()
    return [event["text"] for event in tracker.json()["events"] if event["event"] == "user"]


def served(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """2xx responses each replica gave between two readings of HAProxy's counters."""
    return {name: after[name] - before.get(name, 0) for name in after}


def test_kefu_run_cluster_serves_a_web_chat_from_both_web_apps_and_both_rasa_replicas(
    postgres_server: str, redis_server: str, short_dir: Path
) -> None:
    with (
        fresh_postgres_database(postgres_server) as crm_url,
        fresh_postgres_database(postgres_server) as tracker_url,
    ):
        redis_url = other_redis_db(redis_server)
        env = cluster_env(short_dir / "var", crm_url, tracker_url, redis_url, trained_model(), KEFU_WEB_HOST="0.0.0.0")
        public = f"http://127.0.0.1:{env['KEFU_WEB_PORT']}"
        log_path = short_dir / "kefu-run.log"
        with log_path.open("w") as log:
            kefu = subprocess.Popen(
                [sys.executable, "-m", "router", "run", "--cluster", "--no-train"],
                env={**os.environ, **env, "KEFU_PUBLIC_URL": public, "COLUMNS": "200"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 400
            while "kefu is running" not in log_path.read_text() and time.monotonic() < deadline:
                assert kefu.poll() is None, log_path.read_text()[-5000:]
                time.sleep(1)
            assert "kefu is running" in log_path.read_text(), log_path.read_text()[-5000:]
            stats = short_dir / "var" / "haproxy.sock"
            before = haproxy_responses(stats)

            session = str(uuid.uuid4())
            messages = ["hello", "where is my order", "thank you", "你好", "bye", "hello again"]
            with httpx.Client(base_url=public, timeout=TURN_TIMEOUT_S) as browser:
                browser.get("/chat").raise_for_status()
                for text in messages:
                    answer = browser.post(
                        "/webchat/messages",
                        json={"message": text},
                        headers=session_headers(env["KEFU_SECRET_KEY"], session),
                    )
                    assert answer.status_code == 200 and answer.json(), answer.text[:300]
            rasa_url = f"http://127.0.0.1:{env['KEFU_RASA_PORT']}"
            assert user_texts(rasa_url, env["KEFU_RASA_TOKEN"], f"web:{session}") == messages

            by_replica = served(before, haproxy_responses(stats))
            assert by_replica["web-1"] >= 1 and by_replica["web-2"] >= 1, by_replica
            assert by_replica["rasa-1"] >= 1 and by_replica["rasa-2"] >= 1, by_replica
            assert by_replica["rasa-1"] + by_replica["rasa-2"] == len(messages) + 1, by_replica  # and the tracker

            sockets = listening(descendants(kefu.pid))
            assert {(address, port) for address, port in sockets if not is_loopback(address)} == {
                ("0.0.0.0", int(env["KEFU_WEB_PORT"]))
            }, sockets
            assert len({port for _, port in sockets}) == 3 + 6  # the proxy's three frontends, six replicas
        finally:
            os.killpg(kefu.pid, signal.SIGINT)
            try:
                kefu.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(kefu.pid, signal.SIGKILL)
                raise


@pytest.fixture(scope="module")
def two_assistants(
    postgres_server: str, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningCluster]:
    """Two Rasa replicas on one PostgreSQL tracker store and Redis lock store (one of each other process)."""
    directory = Path(tempfile.mkdtemp(prefix="kefu-cluster-"))
    try:
        with (
            fresh_postgres_database(postgres_server) as crm_url,
            fresh_postgres_database(postgres_server) as tracker_url,
        ):
            env = cluster_env(directory / "var", crm_url, tracker_url, other_redis_db(redis_server), trained_model())
            with running_cluster(env, replicas={"rasa": 2}) as cluster:
                yield cluster
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def stored_turns(tracker_url: str, sender_id: str) -> list[tuple[str, str | None]]:
    """(event type, user text or action name) of the sender's events in the tracker store, in the order stored."""
    engine = build_engine(tracker_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT type_name, data FROM events WHERE sender_id = :sender ORDER BY id"),
                {"sender": sender_id},
            ).all()
    finally:
        engine.dispose()
    return [(kind, json.loads(data).get("text" if kind == "user" else "name")) for kind, data in rows]


def test_one_customers_messages_sent_at_once_to_both_rasa_replicas_leave_one_ordered_conversation(
    two_assistants: RunningCluster,
) -> None:
    cluster, sender = two_assistants, f"concurrent-{uuid.uuid4()}"
    replicas = [f"http://127.0.0.1:{process.port}" for process in cluster.plan.of_kind("rasa")]
    messages = [f"{greeting} {n}" for n in range(6) for greeting in ("hello", "thanks")]
    start = threading.Barrier(len(messages))

    def send(index: int) -> int:
        start.wait()
        return httpx.post(
            f"{replicas[index % 2]}/webhooks/rest/webhook",
            params={"token": cluster.settings.rasa_token},
            json={"sender": sender, "message": messages[index]},
            timeout=TURN_TIMEOUT_S,
        ).status_code

    with ThreadPoolExecutor(len(messages)) as pool:
        assert list(pool.map(send, range(len(messages)))) == [200] * len(messages), cluster.logs()

    turns = stored_turns(cluster.settings.tracker_database_url, sender)
    said = [text for kind, text in turns if kind == "user"]
    assert sorted(said) == sorted(messages), "each message once in the tracker store"
    # Turn by turn: each message's turn ends (the bot listens again) before the next message is read.
    user_positions = [index for index, (kind, _) in enumerate(turns) if kind == "user"]
    for this, following in zip(user_positions, [*user_positions[1:], len(turns)], strict=True):
        assert ("action", "action_listen") in turns[this + 1 : following], turns
    # Both replicas see the conversation as stored, whichever served which turn.
    for replica in replicas:
        assert user_texts(replica, cluster.settings.rasa_token, sender) == said
