"""Channel overhead and web chat capacity: ``python -m benchmarks.channels``.

1. Latency of one customer turn through the plain REST channel, kefu's web chat channel and the Telegram webhook
   (the webhook answers after the reply reached the Bot API; a local fake Bot API stands in for Telegram), 500
   turns each, the same messages in the same order, the channels interleaved turn by turn; the channels' added
   latency is their p50/p95 minus REST's. Web chat and Telegram are measured twice: as customers reach them,
   through the kefu web app, which relays them to Rasa over loopback (``webchat_web``, ``telegram_web``), and
   posted to Rasa's channel directly; the difference is what the one public port costs.
2. Concurrent web chat sessions one Rasa process holds: N sessions each send a message to the web app, wait for the
   reply and think 2–8 s (mean 5 s, a brisk typist), for ``--step-seconds``; the answer is the largest N whose
   p95 < 200 ms.

Both report the Rasa process's CPU per turn (user + system time from /proc): one Rasa process serves turns on one
core, so that figure, not the machine's load, sets how many sessions it holds.

3. With ``--rasa-replicas 1,2``: the capacity search (2.) on ``kefu run --cluster``'s stack instead, once per count
   of Rasa replicas, one after the other on this machine: PostgreSQL (CRM and tracker store), Redis (lock store,
   flood limits) and HAProxy in front of one web app, one action server, one worker and N Rasa processes
   (``tests/support/cluster.py``). The ratio of sessions held says what a second Rasa brings here; each process's
   CPU per turn says what a core holds elsewhere.

The stack is production's: kefu's channels, tracker store and CRM event broker (SQLite), one Rasa process, and
the web app (one uvicorn process) in front.
Usage: ``python -m benchmarks.channels [--turns 500] [--sessions 5,10,25,50,100,200,300,400] [--rasa-replicas 1,2]``;
the last output line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from router.bootstrap import bootstrap
from router.cluster import HAPROXY
from router.crm import migrate
from router.settings import Settings
from router.web.webchat import CHAT_COOKIE, chat_cookie
from tests.support.cluster import cluster_env, other_redis_db, running_cluster
from tests.support.databases import POSTGRES_SERVER_URL, REDIS_SERVER_URL, fresh_postgres_database
from tests.support.fake_telegram import SECRET, fake_telegram_server, start_channels_stack, text_update
from tests.support.listening import owner_of
from tests.support.rabbitmq import RABBITMQ_URL, private_turn_stream
from tests.support.rasa_stack import RasaStack, trained_model
from tests.support.web import running_web_app

MESSAGES = [
    "你好",
    "hello",
    "我的订单到哪了",
    "where is my parcel",
    "怎么退货",
    "thanks",
    "谢谢",
    "how do refunds work",
]
SENDERS = 50
SECRET_KEY = uuid.uuid4().hex  # signs the benchmark's web chat session cookies, as the web app's key does
SESSION_STEPS = "5,10,25,50,100,200,300,400"
STEP_SECONDS = 25.0
THINK_SECONDS = (2.0, 8.0)
P95_TARGET_MS = 200.0
WARM_UP_SESSIONS, WARM_UP_SECONDS = 10, 15.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc: what bounds how many turns one Rasa holds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) of ``values``, by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))]


def session_cookie(session: str) -> dict[str, str]:
    """The header a browser whose chat page set ``session`` sends with each message."""
    return {"Cookie": f"{CHAT_COOKIE}={chat_cookie(SECRET_KEY, session)}"}


def channel_latencies(stack: RasaStack, web_url: str, turns: int) -> dict[str, list[float]]:
    """Sequential turn latencies for REST, web chat and Telegram (each direct and through the web app)."""
    client = httpx.Client(timeout=60)
    rasa = httpx.Client(timeout=60, params={"token": stack.rasa_token})
    sessions = [str(uuid.uuid4()) for _ in range(2 * SENDERS)]
    run = uuid.uuid4().int % 10**6
    update_ids = iter(range(run * 10**4, run * 10**4 + 10**4))
    telegram = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    post_turns = {
        "rest": lambda i: client.post(
            f"{stack.rasa_url}/webhooks/rest/webhook",
            json={"sender": f"bench-{sessions[i % SENDERS]}", "message": MESSAGES[i % 8]},
        ),
        "webchat": lambda i: rasa.post(
            f"{stack.rasa_url}/webhooks/webchat/webhook",
            json={"session": sessions[i % SENDERS], "message": MESSAGES[i % 8]},
        ),
        "webchat_web": lambda i: client.post(
            f"{web_url}/webchat/messages",
            json={"message": MESSAGES[i % 8]},
            headers=session_cookie(sessions[SENDERS + i % SENDERS]),
        ),
        "telegram": lambda i: rasa.post(
            f"{stack.rasa_url}/webhooks/telegram/webhook",
            json=text_update(next(update_ids), 10**9 + i % SENDERS, MESSAGES[i % 8]),
            headers=telegram,
        ),
        "telegram_web": lambda i: client.post(
            f"{web_url}/webhooks/telegram/webhook",
            json=text_update(next(update_ids), 2 * 10**9 + i % SENDERS, MESSAGES[i % 8]),
            headers=telegram,
        ),
    }
    for post_turn in post_turns.values():
        for index in range(20):  # warm-up: first trackers, connection pools, lazy CRM connection
            post_turn(index).raise_for_status()
    # Interleaved turn by turn, so the shared machine's changing load weighs on every channel alike.
    results: dict[str, list[float]] = {name: [] for name in post_turns}
    for index in range(turns):
        for name, post_turn in post_turns.items():
            started = time.perf_counter()
            response = post_turn(index)
            results[name].append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    client.close()
    rasa.close()
    return results


async def _session(
    client: httpx.AsyncClient, url: str, stop_at: float, think: tuple[float, float], latencies: list[float]
) -> None:
    cookie, rng = session_cookie(str(uuid.uuid4())), random.Random()
    await asyncio.sleep(rng.uniform(0, 5))  # sessions start spread out, as real visitors arrive
    while time.monotonic() < stop_at:
        body = json.dumps({"message": rng.choice(MESSAGES)})
        started = time.perf_counter()
        response = await client.post(url, content=body, headers={"Content-Type": "application/json", **cookie})
        latencies.append((time.perf_counter() - started) * 1000 if response.status_code == 200 else float("inf"))
        await asyncio.sleep(rng.uniform(*think))


async def concurrent_p95(
    web_url: str, sessions: int, seconds: float = STEP_SECONDS, think: tuple[float, float] = THINK_SECONDS
) -> tuple[float, int]:
    """p95 latency (ms) and turns served with ``sessions`` web chat sessions chatting at once, via the web app."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        stop_at = time.monotonic() + seconds
        url = f"{web_url}/webchat/messages"
        await asyncio.gather(*(_session(client, url, stop_at, think, latencies) for _ in range(sessions)))
    return percentile(latencies, 95), len(latencies)


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine has used (user, nice, system, irq, softirq), from /proc/stat."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")


def capacity_step(web_url: str, pids: dict[str, int], sessions: int, args: argparse.Namespace) -> dict[str, float]:
    """One step of the capacity search: p95, turns served and each process's CPU per turn meanwhile.

    The client and the action server share the two cores with Rasa; their CPU and the machine's tell whether Rasa
    or its neighbours set the knee.
    """
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    machine_before = machine_cpu_seconds()
    p95, served = asyncio.run(concurrent_p95(web_url, sessions, args.step_seconds, args.think))
    step: dict[str, float] = {"p95_ms": round(p95, 1), "turns": served}
    for name, pid in pids.items():
        step[f"{name}_cpu_ms_per_turn"] = round((cpu_seconds(pid) - before[name]) * 1000 / max(served, 1), 1)
    step["machine_cpu_ms_per_turn"] = round((machine_cpu_seconds() - machine_before) * 1000 / max(served, 1), 1)
    return step


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: how many turns, which session counts, how long each step lasts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=500, help="measured turns per channel (default 500)")
    parser.add_argument(
        "--sessions",
        default=SESSION_STEPS,
        help=f"comma-separated concurrent session counts, tried in order until p95 >= 200 ms (default {SESSION_STEPS})",
    )
    parser.add_argument("--step-seconds", type=float, default=STEP_SECONDS, help="length of each step (default 25)")
    parser.add_argument(
        "--think", default="2,8", help="min,max seconds a session thinks between messages (default 2,8, the headline)"
    )
    parser.add_argument(
        "--rasa-replicas",
        default="",
        help="comma-separated Rasa replica counts: measure sessions held on the cluster stack with each (e.g. 1,2)",
    )
    args = parser.parse_args(argv)
    try:
        args.rasa_replicas = [int(n) for n in args.rasa_replicas.split(",") if n.strip()]
        args.sessions = [int(n) for n in args.sessions.split(",") if n.strip()]
        low, high = (float(n) for n in args.think.split(","))
    except ValueError:
        parser.error("--sessions and --rasa-replicas take integers like 5,10,25; --think two numbers like 2,8")
    args.think = (low, high)
    return args


def main(argv: list[str] | None = None) -> None:
    """Run both measurements against a fresh stack (or the cluster comparison) and print the figures."""
    args = parse_args(argv)
    if args.rasa_replicas:
        print(json.dumps(compare_replicas(args)))
        return
    work_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-channels-"))
    database_url = f"sqlite:///{work_dir / 'kefu.db'}"
    kefu = bootstrap(Settings(database_url=database_url, var_dir=work_dir / "var"))
    migrate.upgrade(kefu.engine)
    kefu.dispose()
    with fake_telegram_server() as fake:
        stack = start_channels_stack(database_url, work_dir, fake.base_url)
        web_settings = kefu.settings.copy(
            update={
                "secret_key": SECRET_KEY,
                "rasa_url": stack.rasa_url,
                "rasa_token": stack.rasa_token,
                "telegram_secret_token": SECRET,
            }
        )
        try:
            with running_web_app(web_settings, work_dir / "web.log") as web_url:
                figures = measure(stack, web_url, args)
        finally:
            stack.stop()
    print(json.dumps(figures))


def sessions_held(web_url: str, pids: dict[str, int], args: argparse.Namespace) -> tuple[int, dict[str, object]]:
    """The capacity search: more sessions step by step until p95 reaches the target; the most held, and each step."""
    held, steps = 0, {}
    for sessions in args.sessions:
        steps[str(sessions)] = step = capacity_step(web_url, pids, sessions, args)
        cpu = ", ".join(f"{name} {value}" for name, value in step.items() if name.endswith("_cpu_ms_per_turn"))
        print(
            f"{sessions:4d} web chat sessions: p95 {step['p95_ms']} ms over {step['turns']} turns; CPU ms a turn: {cpu}"
        )
        if step["p95_ms"] >= P95_TARGET_MS:
            break
        held = sessions
    return held, steps


def compare_replicas(args: argparse.Namespace) -> dict[str, object]:
    """Sessions held with each count of Rasa replicas on the cluster stack, one count after the other."""
    by_count: dict[int, dict[str, object]] = {}
    held_by_count: dict[int, int] = {}
    for count in args.rasa_replicas:
        work_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-"))
        with (
            fresh_postgres_database(POSTGRES_SERVER_URL) as crm_url,
            fresh_postgres_database(POSTGRES_SERVER_URL) as tracker_url,
            private_turn_stream(RABBITMQ_URL) as turns,
        ):
            redis_url = other_redis_db(REDIS_SERVER_URL)
            env = cluster_env(work_dir / "var", crm_url, tracker_url, redis_url, turns, KEFU_SECRET_KEY=SECRET_KEY)
            with running_cluster(env, trained_model(), {"rasa": count}) as cluster:
                pids = {p.name: owner_of(p.port) for p in cluster.plan.processes if p.port is not None}
                pids |= {HAPROXY: cluster.processes["proxy"].pid, "client": os.getpid()}
                print(f"--- {count} Rasa replica(s) behind HAProxy")
                # Each Rasa's first turns load what the model loads lazily: not part of any step.
                asyncio.run(concurrent_p95(cluster.web_url, WARM_UP_SESSIONS, WARM_UP_SECONDS, args.think))
                held, steps = sessions_held(cluster.web_url, pids, args)
        by_count[count] = {"webchat_sessions_held_p95_under_200ms": held, "steps": steps}
        held_by_count[count] = held
    figures: dict[str, object] = {
        "think_seconds": list(args.think),
        "rasa_replicas": {str(count): measured for count, measured in by_count.items()},
    }
    first = args.rasa_replicas[0]
    if held_by_count[first]:
        ratios = {str(count): round(held / held_by_count[first], 2) for count, held in held_by_count.items()}
        figures[f"sessions_held_ratio_to_{first}_replica"] = ratios
    return figures


def measure(stack: RasaStack, web_url: str, args: argparse.Namespace) -> dict[str, object]:
    """Both measurements on the running stack and web app."""
    figures: dict[str, object] = {"turns_per_channel": args.turns}
    rasa_pid = next(p.pid for p in stack.processes if "bot.server" in p.args)
    action_pid = next(p.pid for p in stack.processes if "bot.action_server" in p.args)
    web_pid = owner_of(httpx.URL(web_url).port or 80)
    pids = {"rasa": rasa_pid, "action_server": action_pid, "web_app": web_pid, "client": os.getpid()}
    if args.turns:
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        latencies = channel_latencies(stack, web_url, args.turns)
        # Warm-up turns included: 20 per channel beside --turns measured ones, for each of the channels.
        cpu_turns = len(latencies) * (args.turns + 20)
        figures["rasa_cpu_ms_per_turn"] = round((cpu_seconds(rasa_pid) - cpu_before["rasa"]) * 1000 / cpu_turns, 1)
        print(f"Rasa process CPU per turn (one at a time): {figures['rasa_cpu_ms_per_turn']} ms")
        # Only the two relayed channels of the five pass through the web app.
        relayed_turns = 2 * (args.turns + 20)
        web_cpu = (cpu_seconds(web_pid) - cpu_before["web_app"]) * 1000 / relayed_turns
        figures["web_app_cpu_ms_per_relayed_turn"] = round(web_cpu, 1)
        print(f"web app CPU per relayed turn: {figures['web_app_cpu_ms_per_relayed_turn']} ms")
        for name, values in latencies.items():
            figures[f"{name}_p50_ms"] = round(statistics.median(values), 1)
            figures[f"{name}_p95_ms"] = round(percentile(values, 95), 1)
            print(f"{name:12s} p50 {figures[f'{name}_p50_ms']} ms  p95 {figures[f'{name}_p95_ms']} ms")
        for name in ("webchat", "telegram"):
            for q in ("p50", "p95"):
                added = figures[f"{name}_{q}_ms"] - figures[f"rest_{q}_ms"]
                figures[f"{name}_added_{q}_ms"] = round(added, 1)
                relay = figures[f"{name}_web_{q}_ms"] - figures[f"{name}_{q}_ms"]
                figures[f"{name}_relay_added_{q}_ms"] = round(relay, 1)
        print(
            f"the web app's relay adds p50 {figures['webchat_relay_added_p50_ms']} / "
            f"p95 {figures['webchat_relay_added_p95_ms']} ms to a web chat turn (target p95 + <= 10 ms)"
        )
    held, steps = sessions_held(web_url, pids, args)
    figures["think_seconds"] = list(args.think)
    figures["webchat_sessions_held_p95_under_200ms"] = held
    figures["webchat_session_steps"] = steps
    figures["sessions_goal"] = 200
    return figures


if __name__ == "__main__":
    main()
