"""Agent console latency under a realistic backlog: queue page, ticket page, API list, and live-update delay.

Starts uvicorn (``create_app``, in a process of its own, through the tests' ``running_web_app``) on a free port
over a fresh demo-seeded database holding ``--tickets`` open tickets, then times real HTTP requests as agent ``lina``
and how long a new ticket takes to reach an open ``/console/stream``. Usage:
``python -m benchmarks.web_console [--tickets 2000] [--requests 200]``; against PostgreSQL with ``--database-url``.
The last line is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.settings import Settings
from tests.support.crm import DEMO_PASSWORD, open_demo_ticket, seed_demo_with_chosen_passwords
from tests.support.listening import free_port
from tests.support.web import running_web_app

TEAMS = [("delivery", "logistics"), ("refund_return", "after_sales"), ("payment_billing", "billing")]
LIVE_SAMPLES = 10
TARGETS = {"queue_page_p99_ms": 250.0, "live_update_p95_s": 1.5}


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _fill(kefu: Kefu, tickets: int) -> None:
    for number in range(tickets):
        category, team = TEAMS[number % len(TEAMS)]
        open_demo_ticket(
            kefu,
            f"web:bench-{number}",
            f"第{number}号投诉：快递延误",
            category=category,
            team=team,
            priority=1 + number % 4,
        )


def _timed(client: httpx.Client, path: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return samples


def _live_delays(client: httpx.Client, kefu: Kefu) -> list[float]:
    """Seconds from a ticket's commit to its event on an open stream."""
    opened: dict[int, float] = {}
    delays: list[float] = []
    done = threading.Event()

    def listen() -> None:
        with client.stream("GET", "/console/stream", timeout=None) as stream:
            for line in stream.iter_lines():
                match = re.match(r'data: \{"id": (\d+)', line)
                if match and int(match.group(1)) in opened:
                    delays.append(time.perf_counter() - opened[int(match.group(1))])
                if len(delays) >= LIVE_SAMPLES:
                    done.set()
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(2)
    for sample in range(LIVE_SAMPLES):
        ticket_id = open_demo_ticket(kefu, f"web:live-{sample}", "实时测试 live test")
        opened[ticket_id] = time.perf_counter()
        time.sleep(1.3)
    done.wait(timeout=30)
    return delays


def main() -> None:
    """Run the benchmark and print the figures, last line JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="kefu-web-bench-"))
    database_url = args.database_url or f"sqlite:///{work_dir / 'kefu.db'}"
    settings = Settings(database_url=database_url, var_dir=work_dir / "var", rasa_url=f"http://127.0.0.1:{free_port()}")
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, settings.data_dir)
        uow.commit()
    started = time.perf_counter()
    _fill(kefu, args.tickets)
    print(f"opened {args.tickets} tickets in {time.perf_counter() - started:.1f} s", flush=True)
    try:
        with (
            running_web_app(settings, work_dir / "uvicorn.log") as base_url,
            httpx.Client(base_url=base_url, timeout=30) as client,
        ):
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
            client.post("/login", data={"username": "lina", "password": DEMO_PASSWORD, "csrf_token": token})
            queue = _timed(client, "/console?tab=team", args.requests)
            print(f"queue page median {statistics.median(queue):.0f} ms", flush=True)
            ticket = _timed(client, "/console/tickets/1", args.requests)
            print(f"ticket page median {statistics.median(ticket):.0f} ms", flush=True)
            api = _timed(client, "/api/tickets?limit=200", args.requests)
            print(f"API list median {statistics.median(api):.0f} ms", flush=True)
            live = _live_delays(client, kefu)
    finally:
        kefu.dispose()
    figures = {
        "database": kefu.engine.dialect.name,
        "open_tickets": args.tickets,
        "requests_each": args.requests,
        "queue_page_p50_ms": round(statistics.median(queue), 1),
        "queue_page_p99_ms": round(_percentile(queue, 0.99), 1),
        "ticket_page_p50_ms": round(statistics.median(ticket), 1),
        "ticket_page_p99_ms": round(_percentile(ticket, 0.99), 1),
        "api_list_p50_ms": round(statistics.median(api), 1),
        "api_list_p99_ms": round(_percentile(api, 0.99), 1),
        "live_update_samples": len(live),
        "live_update_p50_s": round(statistics.median(live), 2) if live else None,
        "live_update_p95_s": round(_percentile(live, 0.95), 2) if live else None,
        "targets": TARGETS,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
