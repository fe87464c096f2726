"""Channel overhead and web chat capacity: ``python -m benchmarks.channels``.

1. Latency of one customer turn through the plain REST channel, kefu's web chat channel and the Telegram webhook
   (the webhook answers after the reply reached the Bot API; a local fake Bot API stands in for Telegram), 500
   turns each, the same messages in the same order, the channels interleaved turn by turn; the channels' added
   latency is their p50/p95 minus REST's.
2. Concurrent web chat sessions one Rasa process holds: N sessions each send a message, wait for the reply and
   think 2–8 s (mean 5 s, a brisk typist), for ``STEP_SECONDS``; the answer is the largest N whose p95 < 200 ms.

The last output line is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from router.bootstrap import bootstrap
from router.crm import migrate
from router.settings import Settings
from tests.fake_telegram import SECRET, fake_telegram_server, start_channels_stack, text_update

TURNS = 500
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
SESSION_STEPS = (5, 10, 25, 50, 100, 200, 300)
STEP_SECONDS = 25.0
P95_TARGET_MS = 200.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) of ``values``, by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered)) - 1))]


def channel_latencies(rasa_url: str) -> dict[str, list[float]]:
    """Sequential turn latencies for REST, web chat and Telegram, with warm-up turns excluded."""
    client = httpx.Client(timeout=60)
    sessions = [str(uuid.uuid4()) for _ in range(SENDERS)]
    run = uuid.uuid4().int % 10**6
    update_ids = iter(range(run * 10**4, run * 10**4 + 10**4))
    turns = {
        "rest": lambda i: client.post(
            f"{rasa_url}/webhooks/rest/webhook",
            json={"sender": f"bench-{sessions[i % SENDERS]}", "message": MESSAGES[i % 8]},
        ),
        "webchat": lambda i: client.post(
            f"{rasa_url}/webhooks/webchat/webhook",
            content=json.dumps({"session": sessions[i % SENDERS], "message": MESSAGES[i % 8]}),
            headers={"Content-Type": "text/plain"},
        ),
        "telegram": lambda i: client.post(
            f"{rasa_url}/webhooks/telegram/webhook",
            json=text_update(next(update_ids), 10**9 + i % SENDERS, MESSAGES[i % 8]),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        ),
    }
    for post_turn in turns.values():
        for index in range(20):  # warm-up: first trackers, connection pools, lazy CRM connection
            post_turn(index).raise_for_status()
    # Interleaved turn by turn, so the shared machine's changing load weighs on every channel alike.
    results: dict[str, list[float]] = {name: [] for name in turns}
    for index in range(TURNS):
        for name, post_turn in turns.items():
            started = time.perf_counter()
            response = post_turn(index)
            results[name].append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    client.close()
    return results


async def _session(client: httpx.AsyncClient, url: str, stop_at: float, latencies: list[float]) -> None:
    session, rng = str(uuid.uuid4()), random.Random()
    await asyncio.sleep(rng.uniform(0, 5))  # sessions start spread out, as real visitors arrive
    while time.monotonic() < stop_at:
        body = json.dumps({"session": session, "message": rng.choice(MESSAGES)})
        started = time.perf_counter()
        response = await client.post(url, content=body, headers={"Content-Type": "text/plain"})
        latencies.append((time.perf_counter() - started) * 1000 if response.status_code == 200 else float("inf"))
        await asyncio.sleep(rng.uniform(2, 8))


async def concurrent_p95(rasa_url: str, sessions: int) -> tuple[float, int]:
    """p95 latency (ms) and turns served with ``sessions`` web chat sessions chatting at once."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        stop_at = time.monotonic() + STEP_SECONDS
        url = f"{rasa_url}/webhooks/webchat/webhook"
        await asyncio.gather(*(_session(client, url, stop_at, latencies) for _ in range(sessions)))
    return percentile(latencies, 95), len(latencies)


def main() -> None:
    """Run both measurements against a fresh stack and print the figures."""
    work_dir = Path(tempfile.mkdtemp(prefix="kefu-bench-channels-"))
    database_url = f"sqlite:///{work_dir / 'kefu.db'}"
    kefu = bootstrap(Settings(database_url=database_url, var_dir=work_dir / "var"))
    migrate.upgrade(kefu.engine)
    kefu.dispose()
    with fake_telegram_server() as fake:
        stack = start_channels_stack(database_url, work_dir, fake.base_url)
        try:
            latencies = channel_latencies(stack.rasa_url)
            figures: dict[str, object] = {"turns_per_channel": TURNS}
            for name, values in latencies.items():
                figures[f"{name}_p50_ms"] = round(statistics.median(values), 1)
                figures[f"{name}_p95_ms"] = round(percentile(values, 95), 1)
                print(f"{name:9s} p50 {figures[f'{name}_p50_ms']} ms  p95 {figures[f'{name}_p95_ms']} ms")
            for name in ("webchat", "telegram"):
                for q in ("p50", "p95"):
                    figures[f"{name}_added_{q}_ms"] = round(figures[f"{name}_{q}_ms"] - figures[f"rest_{q}_ms"], 1)
            held = 0
            steps = {}
            for sessions in SESSION_STEPS:
                p95, served = asyncio.run(concurrent_p95(stack.rasa_url, sessions))
                steps[str(sessions)] = {"p95_ms": round(p95, 1), "turns": served}
                print(f"{sessions:4d} web chat sessions: p95 {p95:.1f} ms over {served} turns")
                if p95 >= P95_TARGET_MS:
                    break
                held = sessions
            figures["webchat_sessions_held_p95_under_200ms"] = held
            figures["webchat_session_steps"] = steps
            figures["sessions_goal"] = 200
        finally:
            stack.stop()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
