"""kefu as a cluster on real engines: ``kefu run --cluster`` behind HAProxy serves the web chat from both web apps
and both Rasa replicas; one customer's messages on both replicas at once leave one ordered conversation (Rasa's
RedisLockStore); a promotion and a rollback reach both Rasa replicas within 15 s (the model server); 200 customers
over the web chat and Telegram lose nothing and log nothing twice while a Rasa replica is killed with -9 and
PostgreSQL (a private server, never the machine's) is stopped for 10 s, their turns going through RabbitMQ to the
turn consumers. Each cluster has a RabbitMQ queue of its own, deleted afterwards."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa

from router.bootstrap import Kefu, bootstrap
from router.crm.models import Conversation, Interaction, Speaker, TrackerCursor
from router.db import build_engine
from router.delivery.telegram_poll import SECRET_HEADER
from router.training import registry
from router.turn_catch_up import CATCH_UP_INTERVAL_S
from router.web.webchat import CHAT_COOKIE, chat_cookie
from tests.support.cluster import (
    FIRST_VERSION,
    RunningCluster,
    cluster_env,
    cluster_settings,
    haproxy_responses,
    other_redis_db,
    promote_first_model,
    register_model,
    running_cluster,
)
from tests.support.crm import DEMO_PASSWORD
from tests.support.databases import PrivatePostgres, fresh_postgres_database, private_postgres, private_postgres_missing
from tests.support.fake_telegram import SECRET, TOKEN, fake_telegram_server, text_update
from tests.support.listening import descendants, is_loopback, listening
from tests.support.rabbitmq import private_turn_stream, rabbitmq_server
from tests.support.rasa_stack import PROJECT_ROOT, rasa_env, tracker_events, trained_model
from tests.support.web import csrf_of, form_login

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.rasa,
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("haproxy") is None, reason="HAProxy is not installed (apt-get install haproxy)"),
]

TURN_TIMEOUT_S = 120
REACH_WITHIN_S = 15
T = TypeVar("T")


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A var/ directory short enough for HAProxy's stats socket (a Unix socket path holds 107 bytes at most)."""
    directory = Path(tempfile.mkdtemp(prefix="kefu-cluster-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


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
        private_turn_stream(rabbitmq_server()) as turns,
    ):
        redis_url = other_redis_db(redis_server)
        env = cluster_env(short_dir / "var", crm_url, tracker_url, redis_url, turns, KEFU_WEB_HOST="0.0.0.0")
        # What `kefu run` trains when no model is active, trained once for every test (`kefu run --no-train` here).
        promote_first_model(cluster_settings(env), trained_model())
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
            started = log_path.read_text()
            assert "turns-1.1 started" in started and "turns-2.1 started" in started, "two turn consumers"
            assert poll(turns.waiting, lambda waiting: waiting == 0, timeout_s=30) == 0, "the turns are consumed"
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
    """Two Rasa replicas on one PostgreSQL tracker store and Redis lock store, pulling their model from the model
    server (one of each other process)."""
    directory = Path(tempfile.mkdtemp(prefix="kefu-cluster-"))
    try:
        with (
            fresh_postgres_database(postgres_server) as crm_url,
            fresh_postgres_database(postgres_server) as tracker_url,
            private_turn_stream(rabbitmq_server()) as turns,
        ):
            env = cluster_env(directory / "var", crm_url, tracker_url, other_redis_db(redis_server), turns)
            with running_cluster(env, trained_model(), replicas={"rasa": 2}) as cluster:
                yield cluster
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def stored_turns(tracker_url: str, sender_id: str) -> list[tuple[str, str | None]]:
    """(event type, user text or action name) of the sender's events in the tracker store, in the order stored."""
    events = tracker_events(tracker_url, sender_id)
    return [(kind, event.get("text" if kind == "user" else "name")) for kind, event in events]


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


def served_model(replica_url: str, rasa_token: str) -> str:
    """The model one Rasa replica serves, as its own ``GET /status`` names it (the model server's file name)."""
    status = httpx.get(f"{replica_url}/status", params={"token": rasa_token}, timeout=30)
    status.raise_for_status()
    return str(status.json()["model_file"])


def reach_times(replicas: list[str], rasa_token: str, version: str, within_s: float) -> dict[str, float]:
    """Seconds until each replica serves ``version``; fails the test for one that does not within ``within_s``."""
    started, reached = time.monotonic(), {}
    while len(reached) < len(replicas) and time.monotonic() - started < within_s:
        for replica in replicas:
            if replica not in reached and served_model(replica, rasa_token) == f"{version}.tar.gz":
                reached[replica] = round(time.monotonic() - started, 1)
        time.sleep(0.25)
    assert len(reached) == len(replicas), f"{version} within {within_s} s only on {reached}"
    return reached


def test_a_promotion_and_a_rollback_reach_both_rasa_replicas_within_15_s(two_assistants: RunningCluster) -> None:
    cluster, settings = two_assistants, two_assistants.settings
    replicas = [f"http://127.0.0.1:{process.port}" for process in cluster.plan.of_kind("rasa")]
    assert {served_model(replica, settings.rasa_token) for replica in replicas} == {f"{FIRST_VERSION}.tar.gz"}
    # A second version of the same assistant with other bytes: the replicas' model_file tells the two apart.
    v2 = registry.version_path(settings.models_dir, registry.NLU, "v2")
    v2.write_bytes(gzip.compress(gzip.decompress(trained_model().read_bytes()), mtime=2))
    kefu = bootstrap(settings)
    try:
        register_model(kefu, "v2", v2)
    finally:
        kefu.dispose()

    # The operator promotes on the command line, with the cluster's settings (KEFU_MODEL_SERVER among them).
    command_started = time.monotonic()
    promoted = subprocess.run(
        [sys.executable, "-m", "router", "model", "promote", "v2"],
        cwd=PROJECT_ROOT, env=rasa_env(**cluster.env), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert promoted.returncode == 0 and "every Rasa server pulls it" in promoted.stdout, promoted.stdout[-2000:]
    command_s = time.monotonic() - command_started
    promote_s = reach_times(replicas, settings.rasa_token, "v2", REACH_WITHIN_S)

    # An admin rolls back on the admin page, through the proxy, on whichever web app it reaches.
    with httpx.Client(base_url=cluster.web_url, timeout=60) as admin:
        assert form_login(admin, "admin", DEMO_PASSWORD).status_code in (200, 303)
        token = csrf_of(admin, "/admin/models")
        answer = admin.post(
            f"/admin/models/{FIRST_VERSION}/rollback", data={"csrf_token": token}, follow_redirects=False
        )
    assert answer.status_code == 303, answer.text[:500]
    assert "every Rasa server pulls it" in httpx.URL(answer.headers["location"]).params["notice"]
    rollback_s = reach_times(replicas, settings.rasa_token, FIRST_VERSION, REACH_WITHIN_S)
    print(f"kefu model promote took {command_s:.1f} s; then each replica served it after {promote_s} s (promotion)")
    print(f"after the admin page's rollback each replica served it after {rollback_s} s")
    for replica in replicas:
        answered = httpx.post(
            f"{replica}/webhooks/rest/webhook",
            params={"token": settings.rasa_token},
            json={"sender": f"after-rollback-{uuid.uuid4()}", "message": "你好"},
            timeout=TURN_TIMEOUT_S,
        )
        assert answered.status_code == 200 and answered.json(), cluster.logs()


WEB_MESSAGES = (
    ["hello", "where is my parcel", "how do refunds work", "thank you"],
    ["你好", "我的订单到哪了", "怎么退货", "谢谢"],
)
TELEGRAM_MESSAGES = ["hi there", "my order has not arrived", "can I pay by card", "thanks"]
WEB_SENDERS, TELEGRAM_SENDERS = 150, 50
THINK_S = (3.0, 8.0)  # between a customer's messages: the load outlasts the faults and the recovery from them
KILL_RASA_AT_S, STOP_POSTGRES_AT_S, POSTGRES_DOWN_S = 2.0, 4.0, 10.0
SETTLE_S = 10  # the turn catch-up's minimum age, short so the test need not wait two minutes


@dataclass(frozen=True)
class Sent:
    """One customer message and whether kefu accepted it: HTTP 2xx from the web app, through the proxy."""

    sender_id: str
    text: str
    outcome: str  # the HTTP status, or the error that stood for one
    at_s: float  # when it was sent, from the start of the load

    @property
    def accepted(self) -> bool:
        return self.outcome.startswith("2")


async def post(client: httpx.AsyncClient, path: str, **request: Any) -> str:
    """The status of a POST, or the name of the error that kept it from having one."""
    try:
        return str((await client.post(path, **request)).status_code)
    except httpx.HTTPError as error:
        return type(error).__name__


async def web_customer(client: httpx.AsyncClient, start: float, secret_key: str, index: int) -> list[Sent]:
    """A web chat customer: sends four messages, thinking a little between them."""
    session, sent = str(uuid.uuid4()), []
    headers = session_headers(secret_key, session)
    await asyncio.sleep(random.uniform(0, 4))
    for text in WEB_MESSAGES[index % 2]:
        at_s = time.monotonic() - start
        outcome = await post(client, "/webchat/messages", json={"message": text}, headers=headers)
        sent.append(Sent(f"web:{session}", text, outcome, at_s))
        await asyncio.sleep(random.uniform(*THINK_S))
    return sent


async def telegram_customer(client: httpx.AsyncClient, start: float, chat_id: int) -> list[Sent]:
    """A Telegram customer: four updates to the webhook, as Telegram posts them (each once)."""
    sent = []
    await asyncio.sleep(random.uniform(0, 4))
    for number, text in enumerate(TELEGRAM_MESSAGES):
        update = text_update(chat_id * 10 + number, chat_id, text, language_code="en")
        at_s = time.monotonic() - start
        outcome = await post(client, "/webhooks/telegram/webhook", json=update, headers={SECRET_HEADER: SECRET})
        sent.append(Sent(f"telegram:{chat_id}", text, outcome, at_s))
        await asyncio.sleep(random.uniform(*THINK_S))
    return sent


async def customers_during_faults(cluster: RunningCluster, postgres: PrivatePostgres) -> list[Sent]:
    """Every customer at once; meanwhile one Rasa replica is killed with -9 and PostgreSQL stops for a while."""

    async def faults() -> None:
        await asyncio.sleep(KILL_RASA_AT_S)
        cluster.kill("rasa-1")
        await asyncio.sleep(STOP_POSTGRES_AT_S - KILL_RASA_AT_S)
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(POSTGRES_DOWN_S)
        await asyncio.to_thread(postgres.start)

    limits = httpx.Limits(max_connections=WEB_SENDERS + TELEGRAM_SENDERS)
    async with httpx.AsyncClient(base_url=cluster.web_url, timeout=TURN_TIMEOUT_S, limits=limits) as client:
        first_chat = random.randint(10**8, 10**9)
        start = time.monotonic()
        customers = [web_customer(client, start, cluster.settings.secret_key, i) for i in range(WEB_SENDERS)]
        customers += [telegram_customer(client, start, first_chat + i) for i in range(TELEGRAM_SENDERS)]
        *conversations, _ = await asyncio.gather(*customers, faults())
    return [message for conversation in conversations for message in conversation]


def tracker_user_turns(tracker_url: str) -> Counter[tuple[str, str]]:
    """How often each (sender, text) is among the customer messages in Rasa's tracker store."""
    engine = build_engine(tracker_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT sender_id, data FROM events WHERE type_name = 'user'")).all()
    finally:
        engine.dispose()
    return Counter((sender_id, json.loads(data)["text"]) for sender_id, data in rows)


def logged_customer_turns(kefu: Kefu) -> Counter[tuple[str, str]]:
    """How often each (sender, text) is among the customer turns in the CRM's ``interactions``."""
    with kefu.reader() as reader:
        rows = reader.session.execute(
            sa.select(Conversation.sender_id, Interaction.text)
            .join(Conversation, Conversation.id == Interaction.conversation_id)
            .where(Interaction.speaker == Speaker.customer)
        ).all()
    return Counter((sender_id, text) for sender_id, text in rows)


def tracker_cursors(kefu: Kefu) -> int:
    """How many tracker stores the workers' turn catch-up keeps a cursor for."""
    with kefu.reader() as reader:
        return len(reader.session.scalars(sa.select(TrackerCursor)).all())


def poll(check: Callable[[], T], done: Callable[[T], bool], timeout_s: float) -> T:
    """``check()`` again every second until ``done`` says so or the time is up; the last result."""
    deadline = time.monotonic() + timeout_s
    while not done(result := check()) and time.monotonic() < deadline:
        time.sleep(1)
    return result


def test_200_customers_lose_no_message_and_none_is_logged_twice_while_a_rasa_is_killed_and_postgresql_stops(
    redis_server: str, short_dir: Path
) -> None:
    if reason := private_postgres_missing():
        pytest.skip(reason)
    with (
        private_postgres() as postgres,
        fresh_postgres_database(postgres.url) as crm_url,
        fresh_postgres_database(postgres.url) as tracker_url,
        fake_telegram_server() as telegram,
        private_turn_stream(rabbitmq_server()) as turns,
    ):
        telegram_settings = {
            "KEFU_TELEGRAM_TOKEN": TOKEN,
            "KEFU_TELEGRAM_SECRET_TOKEN": SECRET,
            "KEFU_TELEGRAM_API_URL": telegram.base_url,
        }
        env = cluster_env(
            short_dir / "var",
            crm_url,
            tracker_url,
            other_redis_db(redis_server),
            turns,
            KEFU_TURN_CATCH_UP_SETTLE_S=str(SETTLE_S),
            **telegram_settings,
        )
        with running_cluster(env, trained_model()) as cluster:
            kefu = bootstrap(cluster.settings)
            try:
                # The catch-up reads a tracker from where it first saw it: let it see this one before anyone talks.
                watching = poll(lambda: tracker_cursors(kefu), bool, timeout_s=90)
                assert watching, f"no worker catches up on the tracker store\n{cluster.logs()}"

                sent = asyncio.run(customers_during_faults(cluster, postgres))
                accepted = Counter((message.sender_id, message.text) for message in sent if message.accepted)
                assert len(sent) == 4 * (WEB_SENDERS + TELEGRAM_SENDERS)
                recovered = STOP_POSTGRES_AT_S + POSTGRES_DOWN_S
                # Some messages meet the faults (answered 5xx: not accepted); kefu takes messages again afterwards.
                outcomes = Counter((message.outcome, int(message.at_s // 5) * 5) for message in sent)
                assert 0 < len(accepted) < len(sent), sorted(outcomes.items())
                assert any(message.accepted for message in sent if message.at_s > recovered), sorted(outcomes.items())
                logged = poll(
                    lambda: logged_customer_turns(kefu),
                    lambda turns: all(turns[message] for message in accepted),
                    timeout_s=SETTLE_S + CATCH_UP_INTERVAL_S + 60,
                )
            finally:
                kefu.dispose()
            in_tracker = tracker_user_turns(tracker_url)
            tried = Counter((message.sender_id, message.text) for message in sent)
            lost = sorted(message for message in accepted if in_tracker[message] != 1 or logged[message] != 1)
            counts = [(message, in_tracker[message], logged[message]) for message in lost[:10]]
            assert not lost, f"{len(lost)} accepted but not once in the tracker and interactions: {counts}"
            doubled = sorted(message for message in tried if in_tracker[message] > 1 or logged[message] > 1)
            assert not doubled, f"stored twice: {doubled[:10]}"
            assert cluster.processes["rasa-2"].poll() is None and cluster.responses()["rasa-2"] > 0
