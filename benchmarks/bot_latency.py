"""Bot turn latency through the REST channel: kefu (actions + CRM logging on) beside a bare ``rasa init`` bot.

Both servers run at once and turns alternate between them, so load from other jobs on the machine hits both alike.
Usage: ``python -m benchmarks.bot_latency [--turns 1000]``; the last line is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import func, select

from router.bootstrap import bootstrap
from router.crm import migrate
from router.crm.models import Interaction
from router.crm.seed import seed_faq
from router.settings import Settings
from tests.support.listening import free_port
from tests.support.rasa_stack import PROJECT_ROOT, RASA, _stop, rasa_env, running_stack

BARE_MODEL = PROJECT_ROOT / "models" / "bench-cache" / "rasa-init.tar.gz"
WARMUP_TURNS = 20
TURNS_PER_CONVERSATION = 8
LOG_WAIT_S = 120

# Real customer turns that exercise NLU, rules and the actions that read the CRM (FAQ), in both languages.
KEFU_SCRIPT = [
    "你好",
    "一般多久发货？",
    "你是机器人吗",
    "谢谢",
    "hi there",
    "How do I return an item?",
    "are you a real person?",
    "thanks, bye",
]
BARE_SCRIPT = ["hello", "I am sad", "yes", "great", "are you a bot?", "hi", "I am happy", "bye"]


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.95 → p95) by linear interpolation, as numpy's default does."""
    return statistics.quantiles(samples, n=1000, method="inclusive")[round(fraction * 1000) - 1]


def bare_model() -> Path:
    """The default ``rasa init`` bot's model, trained once and cached (training takes minutes on 2 cores)."""
    if BARE_MODEL.exists():
        return BARE_MODEL
    BARE_MODEL.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(
            [RASA, "init", "--no-prompt", "--init-dir", directory], cwd=directory, env=rasa_env(), check=True
        )
        shutil.copy(next(Path(directory, "models").glob("*.tar.gz")), BARE_MODEL)
    return BARE_MODEL


@contextmanager
def bare_server(work_dir: Path) -> Iterator[str]:
    """A bare Rasa server (REST channel, no action server, no event broker) on a free port."""
    port = free_port()
    (work_dir / "credentials.yml").write_text("rest:\n", encoding="utf-8")
    log = (work_dir / "bare.log").open("wb")
    command = [RASA, "run", "--enable-api", "--port", str(port), "--model", str(bare_model())]
    command += ["--credentials", str(work_dir / "credentials.yml")]
    process = subprocess.Popen(
        command, cwd=work_dir, env=rasa_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"bare Rasa exited: {(work_dir / 'bare.log').read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{url}/status", timeout=5).json().get("model_id"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        yield url
    finally:
        _stop(process)
        log.close()


def seeded_crm(work_dir: Path) -> str:
    """A migrated SQLite CRM with the FAQ seeded, as the action server and event broker use it."""
    database_url = f"sqlite:///{work_dir / 'kefu.db'}"
    kefu = bootstrap(Settings(database_url=database_url, var_dir=work_dir / "var"))
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_faq(uow.session, kefu.settings.data_dir)
        uow.commit()
    kefu.dispose()
    return database_url


def timed_turn(client: httpx.Client, url: str, sender_id: str, text: str) -> float:
    """Milliseconds from sending a message to having the bot's full reply."""
    started = time.perf_counter()
    response = client.post(f"{url}/webhooks/rest/webhook", json={"sender": sender_id, "message": text})
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    if not response.json():
        raise RuntimeError(f"no reply to {text!r} from {url}")
    return elapsed_ms


def logged_rows(database_url: str, expected: int) -> int:
    """Interactions the event broker stored, waiting for its background writer to catch up."""
    kefu = bootstrap(Settings(database_url=database_url))
    deadline = time.monotonic() + LOG_WAIT_S
    try:
        while True:
            with kefu.uow() as uow:
                count = uow.session.execute(select(func.count(Interaction.id))).scalar_one()
            if count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.5)
    finally:
        kefu.dispose()


def run(turns: int) -> dict[str, float | int]:
    """Alternate ``turns`` turns between kefu and the bare bot; latency figures of both."""
    kefu_ms: list[float] = []
    bare_ms: list[float] = []
    kefu_ms_by_text: dict[str, list[float]] = {text: [] for text in KEFU_SCRIPT}
    with tempfile.TemporaryDirectory(prefix="kefu-bot-latency-") as directory:
        work_dir = Path(directory)
        database_url = seeded_crm(work_dir)
        with (
            running_stack(database_url, work_dir / "kefu", event_broker=True) as stack,
            bare_server(work_dir) as bare_url,
            httpx.Client(timeout=60) as client,
        ):
            lines = zip(itertools.cycle(KEFU_SCRIPT), itertools.cycle(BARE_SCRIPT), strict=False)
            for index, (kefu_text, bare_text) in enumerate(itertools.islice(lines, WARMUP_TURNS + turns)):
                sender_id = f"bench-{index // TURNS_PER_CONVERSATION}"
                kefu_sample = timed_turn(client, stack.rasa_url, sender_id, kefu_text)
                bare_sample = timed_turn(client, bare_url, sender_id, bare_text)
                if index >= WARMUP_TURNS:
                    kefu_ms.append(kefu_sample)
                    kefu_ms_by_text[kefu_text].append(kefu_sample)
                    bare_ms.append(bare_sample)
            customer_turns = WARMUP_TURNS + turns
            # Each customer turn is logged with at least one bot turn.
            rows = logged_rows(database_url, 2 * customer_turns)
    for text, samples in kefu_ms_by_text.items():
        # Where kefu's tail comes from: each scripted message's own median and p95.
        print(f"kefu {text!r}: p50 {statistics.median(samples):.1f} ms, p95 {percentile(samples, 0.95):.1f} ms")
    figures = {
        "p50_ms": round(percentile(kefu_ms, 0.50), 1),
        "p95_ms": round(percentile(kefu_ms, 0.95), 1),
        "bare_p50_ms": round(percentile(bare_ms, 0.50), 1),
        "bare_p95_ms": round(percentile(bare_ms, 0.95), 1),
        "turns": turns,
    }
    figures["p95_ratio"] = round(figures["p95_ms"] / figures["bare_p95_ms"], 2)
    figures["logged_interactions"] = rows
    figures["customer_turns_sent"] = customer_turns
    return figures


def main() -> None:
    """Print progress, then the figures as the last line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=1000, help="measured turns per bot (after warm-up)")
    figures = run(parser.parse_args().turns)
    target = "met" if figures["p95_ratio"] <= 1.3 else "missed"
    print(f"kefu p95 {figures['p95_ms']} ms vs bare {figures['bare_p95_ms']} ms: target p95 <= 1.3x bare {target}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
