"""The ``kefu`` command: run, set up, train and inspect kefu. Every Makefile target calls into it."""

from __future__ import annotations

import signal
import sys

import typer
from rich.console import Console

from router import preflight, runner
from router.accounts.cli import app as user_app
from router.accounts.startup import start_problems
from router.analytics.cli import app as analytics_app
from router.analytics.cli import demo_data
from router.bootstrap import Kefu, bootstrap
from router.cli_common import fail, kefu_or_exit, settings_or_exit
from router.crm import migrate
from router.crm.seed import seed_demo
from router.delivery.cli import app as telegram_app
from router.training.cli import data_app, model_app
from router.training.cli import train as train_command
from router.triage import cli as triage_cli

console = Console()
app = typer.Typer(help="kefu 客服: bilingual customer-service assistant and ticket router.", no_args_is_help=True)
db_app = typer.Typer(help="Create and migrate the CRM database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
tracker_app = typer.Typer(help="Rasa's tracker store (the raw conversation events).", no_args_is_help=True)
app.add_typer(tracker_app, name="tracker")
turns_app = typer.Typer(help="The RabbitMQ turn stream from Rasa to the CRM (KEFU_RABBITMQ_URL).", no_args_is_help=True)
app.add_typer(turns_app, name="turns")
app.add_typer(telegram_app, name="telegram")
app.add_typer(analytics_app, name="analytics")
app.add_typer(triage_cli.app, name="triage")
app.command("demo-data")(demo_data)
app.command("train")(train_command)
app.add_typer(data_app, name="data")
app.add_typer(model_app, name="model")
app.add_typer(user_app, name="user")


def _refuse_unsafe_start(kefu: Kefu) -> None:
    problems = start_problems(kefu)
    if problems:
        fail("refusing to start: " + "; ".join(problems))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Alembic revision to migrate to.")) -> None:
    """Bring the CRM schema up to date (safe to run again)."""
    kefu = kefu_or_exit(migrated=False)
    migrate.upgrade(kefu.engine, revision)
    console.print(f"[green]✓[/] database at revision {migrate.current_revision(kefu.engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Alembic revision, or 'base' to drop everything.")) -> None:
    """Take the CRM schema back to an earlier revision."""
    kefu = kefu_or_exit(migrated=False)
    migrate.downgrade(kefu.engine, revision)
    console.print(f"[green]✓[/] database at revision {migrate.current_revision(kefu.engine)}")


@db_app.command("current")
def db_current() -> None:
    """Show the revision the database is at and the newest one the code knows."""
    kefu = kefu_or_exit(migrated=False)
    console.print(f"database: {migrate.current_revision(kefu.engine)}  code: {migrate.head_revision()}")


@db_app.command("redact")
def db_redact() -> None:
    """Redact personal data in rows stored before it was recognised (safe to run again: changes nothing then)."""
    from router.crm.scrub import redact_stored

    kefu = kefu_or_exit()
    with kefu.uow() as uow:
        changed = redact_stored(uow.session, uow.commit)
    summary = ", ".join(f"{count} {table}" for table, count in sorted(changed.items())) or "nothing"
    console.print(f"[green]✓[/] redacted: {summary}")


@tracker_app.command("prune")
def tracker_prune(
    days: int = typer.Option(None, min=0, help="Keep this many days (default: KEFU_TRACKER_RETENTION_DAYS; 0: all)."),
    database_url: str = typer.Option(None, help="The tracker store's SQLAlchemy URL (default: var/rasa_tracker.db)."),
) -> None:
    """Delete tracker events older than the retention period (the worker does this every hour)."""
    from router.retention import prune_tracker

    settings = settings_or_exit()
    days = settings.tracker_retention_days if days is None else days
    result = prune_tracker(database_url or settings.tracker_database_url, days)
    if result.cutoff is None:
        console.print("[green]✓[/] nothing to prune (retention is 0 days, or there is no tracker store yet)")
    else:
        console.print(f"[green]✓[/] {result.deleted} tracker events older than {days} days deleted")


@app.command("seed-demo")
def seed_demo_command() -> None:
    """Create the demo organisation (teams, agents, admin, FAQ) if the CRM has no users yet."""
    kefu = kefu_or_exit(migrated=False)
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        logins = seed_demo(uow.session, kefu.passwords, kefu.settings.data_dir)
        uow.commit()
    if not logins:
        console.print("CRM already has users: nothing seeded")
        runner.show_logins(logins, console)
        return
    console.print("[green]✓[/] demo organisation created")
    runner.show_logins(logins, console)


@app.command()
def web() -> None:
    """Serve the web app: agent console, admin, analytics, web chat and the JSON API."""
    import uvicorn

    from router.web.app import UVICORN_OPTIONS

    settings = settings_or_exit()
    _refuse_unsafe_start(bootstrap(settings))
    uvicorn.run(
        "router.web.app:create_app",
        factory=True,
        host=settings.web_host,
        port=settings.web_port,
        log_level="info",
        **UVICORN_OPTIONS,
    )


@app.command()
def worker(
    interval: float = typer.Option(1.0, help="Seconds between sweeps."),
    once: bool = typer.Option(False, help="Do one sweep and exit."),
) -> None:
    """Assign waiting tickets, requeue absent agents' tickets, escalate SLA breaches, run training jobs."""
    from router.worker import run_worker

    kefu = kefu_or_exit()
    _refuse_unsafe_start(kefu)
    run_worker(kefu, interval_s=interval, once=once)


@turns_app.command("consume")
def turns_consume() -> None:
    """Write the turns Rasa publishes to RabbitMQ into the CRM, acknowledging each batch once it is committed."""
    from router.turn_stream import consume_turns

    kefu = kefu_or_exit()
    if not kefu.settings.rabbitmq_url:
        fail("KEFU_RABBITMQ_URL is not set: each Rasa writes its own turns to the CRM, there is nothing to consume")
    _refuse_unsafe_start(kefu)
    consume_turns(kefu)


@app.command()
def run(
    train: bool = typer.Option(True, help="Train the models that are missing before starting."),
    cluster: bool = typer.Option(
        False,
        "--cluster",
        help="2 Rasa, 2 action servers, 2 web apps, 3 workers and 2 turn consumers behind HAProxy, on PostgreSQL, "
        "Redis and RabbitMQ, Rasa pulling its model from the model server.",
    ),
) -> None:
    """Set up what is missing (database, demo data, models), start every process, print the URLs."""
    settings = settings_or_exit()
    plan = None
    if cluster:
        from router.cluster import cluster_problem, plan_cluster

        problem = cluster_problem(settings)
        if problem:
            fail(str(problem))
        plan = plan_cluster(settings)
    busy = preflight.busy_ports(settings, plan.ports if plan else None)
    if busy:
        fail("; ".join(map(str, busy)))
    kefu = kefu_or_exit(migrated=False)
    migrate.upgrade(kefu.engine)
    logins = []
    if settings.env == "development":  # production starts with the accounts `kefu user add` made, never demo ones
        with kefu.uow() as uow:
            logins = seed_demo(uow.session, kefu.passwords, settings.data_dir)
            uow.commit()
        if logins:
            console.print("[green]✓[/] demo organisation created")
    _refuse_unsafe_start(kefu)
    if train:
        from router.training.cli import train_missing

        train_missing(kefu, console)
    kefu.dispose()
    manager = runner.start(settings, plan)
    signal.signal(signal.SIGINT, lambda *_: None)  # honcho, in our process group, stops the children
    not_ready = runner.wait_until_healthy(lambda: manager.poll() is None, settings, console, cluster=plan)
    if manager.poll() is not None:
        fail("a kefu process exited during start-up: see its log lines above")
    if not_ready:
        console.print(f"[yellow]![/] still not answering: {', '.join(not_ready)}")
    runner.show_urls(settings, logins, console)
    sys.exit(manager.wait())


@app.command("rasa-files")
def rasa_files() -> None:
    """Write Rasa's endpoints and credentials files into var/ from the settings, as `kefu run` does at start (for
    a Rasa started by other means, e.g. compose.yaml)."""
    settings = settings_or_exit()
    for path in (runner.write_endpoints(settings), runner.write_credentials(settings)):
        console.print(f"[green]✓[/] {path}")


@app.command()
def doctor() -> None:
    """Check the interpreter, install, database, ports and models, and say what to fix."""
    from router.doctor import run_checks

    if not run_checks(settings_or_exit(), console):
        raise typer.Exit(code=1)
