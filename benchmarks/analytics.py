"""Analytics speed on the demo history: how long ``kefu demo-data`` takes and how long each page's analysis takes.

Usage: ``python -m benchmarks.analytics [--customers 600] [--days 30]``; the last line is one JSON object of figures.
Target (issue 9): each analysis (what one page computes, chart included) within 5 s on 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from router.analytics.demo_data import generate_history
from router.analytics.period import Period
from router.analytics.report import REPORTS, build
from router.analytics.similar import similar_tickets
from router.analytics.topics import topic_tokens
from router.bootstrap import bootstrap
from router.crm import migrate
from router.crm.models import Ticket
from router.settings import Settings

PAGE_TARGET_S = 5.0


def main() -> None:
    """Generate the demo history into a scratch SQLite CRM, then time every analysis on it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=30, help="Period each analysis covers.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(database_url=f"sqlite:///{Path(scratch) / 'kefu.db'}", var_dir=Path(scratch))
        kefu = bootstrap(settings)
        migrate.upgrade(kefu.engine)
        started = time.perf_counter()
        with kefu.uow() as uow:
            summary = generate_history(
                uow.session, kefu.passwords, settings.data_dir, customers=args.customers, days=90
            )
            uow.commit()
        figures: dict[str, object] = {
            "customers": summary.customers,
            "conversations": summary.conversations,
            "tickets": summary.tickets,
            "demo_data_s": round(time.perf_counter() - started, 2),
            "period_days": args.days,
        }
        period = Period.last(args.days)
        # The web process loads jieba's dictionary once at its first Chinese text; time the pages, not that.
        started = time.perf_counter()
        topic_tokens("预热词典")
        figures["jieba_load_s"] = round(time.perf_counter() - started, 2)
        with kefu.uow() as uow:
            for name in REPORTS:
                started = time.perf_counter()
                result = build(uow.session, name, period)
                result.chart()
                figures[f"{name}_s"] = round(time.perf_counter() - started, 2)
                print(f"{name}: {figures[f'{name}_s']} s, {len(result.rows)} rows", flush=True)
            latest = uow.session.scalar(select(Ticket.id).order_by(Ticket.created_at.desc()).limit(1))
            count = uow.session.scalar(select(func.count(Ticket.id)))
            started = time.perf_counter()
            similar_tickets(uow.session, latest, k=5, visible_teams=None)  # a supervisor: every team
            figures["similar_tickets_s"] = round(time.perf_counter() - started, 3)
            figures["similar_candidates"] = count
        kefu.dispose()
    slowest = max(value for key, value in figures.items() if key.endswith("_s") and key[:-2] in REPORTS)
    figures["slowest_page_s"] = slowest
    figures["page_target_s"] = PAGE_TARGET_S
    figures["meets_target"] = slowest <= PAGE_TARGET_S
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
