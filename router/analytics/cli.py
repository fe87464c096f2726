"""``kefu demo-data`` and ``kefu analytics report``: fill the CRM with a demo history, write every analysis to files."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.cli_common import fail, kefu_or_exit
from router.crm import migrate
from router.crm.models import Conversation
from router.errors import InvalidInput

console = Console()
app = typer.Typer(help="Analytics over the CRM: KPIs, topics, CSAT drivers, segments, rules, staffing.")


def _kefu() -> Kefu:
    kefu = kefu_or_exit(migrated=False)
    migrate.upgrade(kefu.engine)
    return kefu


def demo_data(
    customers: int = typer.Option(600, help="Customers to invent (about 5 conversations each)."),
    days: int = typer.Option(90, help="Days of history, ending now."),
    seed: int = typer.Option(7, help="Random seed: the same seed writes the same history."),
    append: bool = typer.Option(False, help="Add to a CRM that already has conversations."),
) -> None:
    """Fill the CRM with a realistic bilingual history (conversations, tickets, CSAT) so every chart has data."""
    # Imported here, not at the top: numpy/pandas/matplotlib would slow down every other `kefu` command.
    from router.analytics.demo_data import generate_history

    kefu = _kefu()
    try:
        with kefu.uow() as uow:
            existing = uow.session.scalar(select(func.count(Conversation.id)))
            if existing and not append:
                fail(f"the CRM already has {existing} conversations: pass --append to add more")
            summary = generate_history(
                uow.session, kefu.passwords, kefu.settings.data_dir, customers=customers, days=days, seed=seed
            )
            uow.commit()
    except InvalidInput as error:
        fail(str(error))
    finally:
        kefu.dispose()
    console.print(
        f"[green]✓[/] {summary.customers} customers, {summary.conversations} conversations, "
        f"{summary.tickets} tickets, {summary.ratings} CSAT ratings written"
    )


@app.command()
def report(
    out: Path = typer.Option(..., help="Folder to write one CSV and one PNG per analysis into."),
    days: int = typer.Option(30, help="Analyse the last DAYS days."),
) -> None:
    """Run every analysis over the last DAYS days and write its table (CSV) and chart (PNG) into OUT."""
    from router.analytics import charts, export
    from router.analytics.period import Period
    from router.analytics.report import REPORTS, build

    kefu = _kefu()
    try:
        period = Period.last(days)
    except InvalidInput as error:
        fail(str(error))
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    with kefu.uow() as uow:
        for name in REPORTS:
            result = build(uow.session, name, period)
            (out / f"{name}.csv").write_text(export.to_csv(result.rows), encoding="utf-8")
            (out / f"{name}.png").write_bytes(result.chart())
            written[name] = len(result.rows)
    kefu.dispose()
    if not charts.has_cjk_font():
        console.print("[yellow]![/] no CJK font installed (fonts-wqy-microhei): Chinese words in charts show as boxes")
    console.print(json.dumps({"period": period.label, "rows": written}, ensure_ascii=False))
