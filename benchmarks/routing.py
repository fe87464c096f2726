"""Routing throughput: N concurrent router processes assign a backlog of tickets on a scratch CRM database.

``python -m benchmarks.routing --workers 4 --tickets 10000`` (database server from ``KEFU_DATABASE_URL``; a scratch
database is created beside it and dropped afterwards). Last line: one JSON object with ``tickets_per_s``, ``p99_ms``
(one routing transaction that assigned something: lock agents, claim up to ``--batch`` tickets, choose, write,
commit; with ``--batch 1`` that is one routing decision), ``double_assigned``, ``lost`` and ``over_capacity``, the
last three counted from the ticket events.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine, make_url

from router.crm import migrate
from router.crm.models import (
    Agent,
    Channel,
    Customer,
    Presence,
    Role,
    Team,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    User,
    agent_teams,
    utcnow,
)
from router.db import build_engine, build_session_factory
from router.routing.assignment import assign_in_team

TEAMS = ("logistics", "after_sales", "billing", "account", "safety", "service")
CATEGORIES = {
    "logistics": ["delivery"],
    "after_sales": ["refund_return", "product_quality"],
    "billing": ["payment_billing"],
    "account": ["account", "fraud_security"],
    "safety": ["product_safety"],
    "service": ["service_attitude", "other"],
}


def seed_backlog(engine: Engine, *, tickets: int, agents: int, capacity: int, seed: int = 7) -> None:
    """Teams, online agents (every fourth speaks only Chinese) and ``tickets`` queued tickets, bulk-inserted."""
    rng = random.Random(seed)
    now = utcnow()
    with engine.begin() as connection:
        team_ids = [
            connection.execute(insert(Team).values(name=name, display_name=name)).inserted_primary_key[0]
            for name in TEAMS
        ]
        connection.execute(
            insert(User),
            [
                {"username": f"bench{i}", "display_name": f"bench{i}", "password_hash": "-", "role": Role.agent}
                for i in range(agents)
            ],
        )
        user_ids = connection.execute(select(User.id).order_by(User.id)).scalars().all()
        connection.execute(
            insert(Agent),
            [
                {
                    "user_id": user_id,
                    "capacity": capacity,
                    "languages": ["zh"] if i % 4 == 0 else ["zh", "en"],
                    "skills": [],
                    "presence": Presence.online,
                    "last_heartbeat_at": now,
                    "open_tickets": 0,
                }
                for i, user_id in enumerate(user_ids)
            ],
        )
        agent_ids = connection.execute(select(Agent.id).order_by(Agent.id)).scalars().all()
        connection.execute(
            insert(agent_teams),
            [{"agent_id": a, "team_id": team_ids[i % len(team_ids)]} for i, a in enumerate(agent_ids)],
        )
        customer_id = connection.execute(insert(Customer).values(display_name="bench")).inserted_primary_key[0]
        rows = []
        for _ in range(tickets):
            team_index = rng.randrange(len(TEAMS))
            priority = rng.choice((1, 2, 3, 3, 4))
            created = now - timedelta(seconds=rng.randrange(3600))
            rows.append(
                {
                    "customer_id": customer_id,
                    "channel": Channel.web,
                    "language": rng.choice(("zh", "zh", "en")),
                    "category": rng.choice(CATEGORIES[TEAMS[team_index]]),
                    "priority": priority,
                    "status": TicketStatus.queued,
                    "team_id": team_ids[team_index],
                    "first_response_due_at": created + timedelta(minutes=15 * priority),
                    "resolution_due_at": created + timedelta(hours=4 * priority),
                    "created_at": created,
                    "updated_at": created,
                }
            )
        connection.execute(insert(Ticket), rows)


def audit(engine: Engine) -> dict[str, int]:
    """Routing guarantees counted from the ticket events and rows: double assignments, lost tickets, overloads."""
    with engine.connect() as connection:
        per_ticket = dict(
            connection.execute(
                select(TicketEvent.ticket_id, func.count())
                .where(TicketEvent.kind == TicketEventKind.assigned)
                .group_by(TicketEvent.ticket_id)
            ).all()
        )
        last_assignee = dict(
            connection.execute(
                select(TicketEvent.ticket_id, func.max(TicketEvent.agent_id))
                .where(TicketEvent.kind == TicketEventKind.assigned)
                .group_by(TicketEvent.ticket_id)
            ).all()
        )
        tickets = connection.execute(select(Ticket.id, Ticket.status, Ticket.assignee_id)).all()
        per_agent = dict(
            connection.execute(
                select(TicketEvent.agent_id, func.count())
                .where(TicketEvent.kind == TicketEventKind.assigned)
                .group_by(TicketEvent.agent_id)
            ).all()
        )
        agents = connection.execute(select(Agent.id, Agent.capacity, Agent.open_tickets)).all()
    lost = 0
    for ticket_id, status, assignee_id in tickets:
        if status is TicketStatus.assigned:
            lost += per_ticket.get(ticket_id) != 1 or last_assignee.get(ticket_id) != assignee_id
        else:
            lost += status is not TicketStatus.queued or ticket_id in per_ticket
    over = sum(per_agent.get(a, 0) > cap or per_agent.get(a, 0) != load for a, cap, load in agents)
    return {
        "double_assigned": sum(count > 1 for count in per_ticket.values()),
        "lost": lost,
        "over_capacity": over,
        "assigned": sum(status is TicketStatus.assigned for _, status, _ in tickets),
        "queued": sum(status is TicketStatus.queued for _, status, _ in tickets),
    }


def route_until_idle(
    database_url: str, batch: int, start: multiprocessing.Event | None = None
) -> list[tuple[float, int]]:
    """One router: sweep every team in its own transactions until nothing is left; (seconds, assigned) of each."""
    engine = build_engine(database_url)
    sessions = build_session_factory(engine)
    with engine.connect() as connection:
        team_ids = connection.execute(select(Team.id)).scalars().all()
    transactions: list[tuple[float, int]] = []
    if start is not None:
        start.wait()
    idle_rounds = 0
    while idle_rounds < 2:
        assigned = 0
        for team_id in random.sample(team_ids, len(team_ids)):
            began = time.perf_counter()
            with sessions() as session, session.begin():
                decisions = len(assign_in_team(session, team_id, max_tickets=batch, batch_size=batch))
            transactions.append((time.perf_counter() - began, decisions))
            assigned += decisions
        idle_rounds = 0 if assigned else idle_rounds + 1
    engine.dispose()
    return transactions


def _router_process(database_url: str, batch: int, start, results) -> None:
    results.put(route_until_idle(database_url, batch, start))


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A fresh, migrated CRM database beside ``server_url`` (PostgreSQL) or in a temp file (SQLite), then gone."""
    url = make_url(server_url)
    if url.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            scratch = f"sqlite:///{Path(folder) / 'bench.db'}"
            _migrate(scratch)
            yield scratch
        return
    name = f"kefu_bench_{uuid.uuid4().hex[:10]}"
    admin = build_engine(
        url.set(database="postgres").render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        scratch = url.set(database=name).render_as_string(hide_password=False)
        _migrate(scratch)
        yield scratch
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _migrate(database_url: str) -> None:
    engine = build_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Seed a backlog, route it with ``--workers`` processes, audit the events and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--batch", type=int, default=100, help="Tickets one routing transaction may claim.")
    parser.add_argument("--database-url", default=os.environ.get("KEFU_DATABASE_URL", "sqlite:///var/kefu.db"))
    args = parser.parse_args(argv)
    # Room for every ticket even though a quarter of the agents cannot take English ones.
    capacity = math.ceil(args.tickets * 1.5 / args.agents)
    context = multiprocessing.get_context("spawn")
    with scratch_database(args.database_url) as database_url:
        engine = build_engine(database_url)
        seed_backlog(engine, tickets=args.tickets, agents=args.agents, capacity=capacity)
        start, results = context.Event(), context.Queue()
        routers = [
            context.Process(target=_router_process, args=(database_url, args.batch, start, results))
            for _ in range(args.workers)
        ]
        for router in routers:
            router.start()
        time.sleep(2.0)  # let every process finish importing before the clock starts
        began = time.perf_counter()
        start.set()
        transactions = [transaction for _ in routers for transaction in results.get()]
        elapsed = time.perf_counter() - began
        for router in routers:
            router.join()
        figures = audit(engine)
        engine.dispose()
    # Empty transactions (a team found drained, or fully locked by another router) are counted, not timed: they
    # would flatter the percentiles of the work being measured.
    latencies = sorted(seconds for seconds, decisions in transactions if decisions)
    result = {
        "database": make_url(args.database_url).get_backend_name(),
        "workers": args.workers,
        "tickets": args.tickets,
        "agents": args.agents,
        "batch": args.batch,
        "seconds": round(elapsed, 3),
        "tickets_per_s": round(figures["assigned"] / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "p99_of": "one routing decision" if args.batch == 1 else f"one transaction of up to {args.batch} decisions",
        "transactions": len(latencies),
        "empty_transactions": len(transactions) - len(latencies),
        **figures,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
