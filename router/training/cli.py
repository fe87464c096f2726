"""Terminal commands: ``kefu train``, ``kefu data export``, ``kefu model list|promote|rollback``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

from router.bootstrap import Kefu
from router.cli_common import fail, kefu_or_exit, settings_or_exit
from router.crm.models import ModelVersion, User
from router.errors import KefuError
from router.public_data.mapping import load_project_mapping
from router.training import registry
from router.training.jobs import JobReporter, enqueue_retrain, run_job
from router.training.public_nlu import DEFAULT_CAPS, DEFAULT_SEED, import_public

if TYPE_CHECKING:
    from router.training.gate import GateReport
    from router.training.pipeline import RetrainResult

# The modules that train, split and cluster (scikit-learn, pandas) are imported inside the commands that need them,
# so that registering these commands does not slow down every other `kefu` command.

console = Console()
data_app = typer.Typer(help="Training data: export reviewed labels for the trainers.", no_args_is_help=True)
model_app = typer.Typer(help="Model registry: list, promote, roll back.", no_args_is_help=True)


class TerminalReporter(JobReporter):
    """The job's progress on its row and, at the same time, as a rich progress bar in the terminal."""

    def __init__(self, kefu: Kefu, job_id: int, bar: Progress, task: TaskID, verbose: bool) -> None:
        super().__init__(kefu, job_id)
        self._bar, self._task, self._verbose = bar, task, verbose

    def progress(self, fraction: float, message: str) -> None:
        """Move the bar and record the step on the job row."""
        self._bar.update(self._task, completed=fraction * 100, description=message)
        super().progress(fraction, message)

    def log(self, line: str) -> None:
        """Show Rasa's output only with ``--verbose``; it is always kept on the job row."""
        if self._verbose:
            self._bar.console.print(line, markup=False, highlight=False)
        super().log(line)


def _user_id(kefu: Kefu, username: str | None) -> int | None:
    if not username:
        return None
    with kefu.uow() as uow:
        user_id = uow.session.execute(select(User.id).where(User.username == username)).scalar_one_or_none()
    if user_id is None:
        raise KefuError(f"no user {username!r}")
    return user_id


def _run_retrain(
    kefu: Kefu, tolerance: float | None, user_id: int | None, verbose: bool, shown: Console
) -> RetrainResult:
    with kefu.uow() as uow:
        job = enqueue_retrain(uow.session, user_id, tolerance)
        uow.commit()
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%")]
    with Progress(*columns, TimeElapsedColumn(), console=shown) as bar:
        task = bar.add_task("queued", total=100)
        result = run_job(kefu, job.id, TerminalReporter(kefu, job.id, bar, task, verbose))
    if result is None:
        raise KefuError(f"job {job.id} was taken by another process")
    return result


def _verdict(name: str, report: GateReport | None) -> str:
    if report is None:
        return f"{name} gate: not run (no complaint data)"
    verdict = "[green]passed[/green]" if report.passed else "[red]refused[/red]"
    return f"{name} gate: {verdict} — " + "; ".join(report.reasons)


def _show(result: RetrainResult, shown: Console) -> None:
    shown.print(_verdict("intent", result.intent_report))
    shown.print(_verdict("complaint", result.complaint_report))
    outcome = "promoted" if result.promoted else "refused by the gate" if not result.passed else "not promoted"
    shown.print(f"[bold]{result.version}[/bold] {outcome} in {result.seconds:.0f}s")
    if not result.passed:
        shown.print(f"Promote it anyway with: kefu model promote {result.version} --reason '...'")


def train_missing(kefu: Kefu, shown: Console = console) -> bool:
    """For ``kefu run``/``make run``: train and promote a first model when none is active; True if it trained."""
    from router.training.pipeline import needs_training

    if not needs_training(kefu):
        shown.print("[green]✓[/] trained models present")
        return False
    shown.print("Training the assistant and the complaint model (first run: about a minute)")
    _show(_run_retrain(kefu, None, None, False, shown), shown)
    return True


def train(
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing when an active model exists."),
    # typer 0.7 cannot read ``float | None``.
    tolerance: Optional[float] = typer.Option(  # noqa: UP045
        None, min=0.0, max=1.0, help="How much worse than the active models still passes (default KEFU_GATE_TOLERANCE)."
    ),
    user: str = typer.Option("", help="Username the new version is recorded under."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the trainers' output."),
) -> None:
    """Retrain the assistant and the complaint model, gate both and promote them if neither is worse."""
    kefu = kefu_or_exit()
    try:
        if if_missing:
            train_missing(kefu)
        else:
            _show(_run_retrain(kefu, tolerance, _user_id(kefu, user), verbose, console), console)
    except KefuError as error:
        fail(str(error))
    finally:
        kefu.dispose()


@data_app.callback()
def data() -> None:
    """Training data: export reviewed labels for the trainers (a group, so ``kefu data export`` keeps its name)."""


@data_app.command("export")
def export() -> None:
    """Write reviewed labels to data/reviewed/ (Rasa YAML) and data/triage/reviewed.csv."""
    from router.training.export import export_training_data

    kefu = kefu_or_exit()
    try:
        with kefu.uow() as uow:
            summary = export_training_data(uow.session, kefu.settings.data_dir, kefu.settings.project_dir)
    finally:
        kefu.dispose()
    console.print(
        f"{summary.intent_examples} intent examples, {summary.new_intents} new intents, "
        f"{summary.complaint_examples} complaint examples"
    )
    for path in summary.files:
        console.print(f"  {path}")


@data_app.command("split-public")
def split_public() -> None:
    """Split Banking77 and CLINC150 so no near-copy is on both sides; write the training side to data/public/."""
    from router.public_data.sides import write_training_side

    settings = settings_or_exit()
    try:
        load_project_mapping(settings.project_dir, settings.data_dir)
        with console.status("Grouping near-copies (a few minutes)…"):
            counts = write_training_side(settings.shared_data_dir, settings.data_dir / "public")
    except KefuError as error:
        fail(str(error))
    for source, (kept, held_out) in counts.items():
        console.print(f"{source}: {kept} rows shipped for training, {held_out} held out")


@data_app.command("import-public")
def import_public_command(
    # typer 0.7 cannot read ``int | None``.
    per_intent: Optional[int] = typer.Option(  # noqa: UP045
        None, min=1, help="Most sentences every intent takes (default: each intent's own cap)."
    ),
    seed: int = typer.Option(DEFAULT_SEED, help="Which sentences of each source label are taken."),
) -> None:
    """Write data/nlu/en_public.yml from the training side in data/public (Banking77, CLINC150) and the mapping."""
    settings = settings_or_exit()
    caps = DEFAULT_CAPS if per_intent is None else dict.fromkeys(DEFAULT_CAPS, per_intent)
    try:
        path, counts = import_public(settings.project_dir, settings.data_dir, caps, seed)
    except KefuError as error:
        fail(str(error))
    console.print(f"{path}: " + ", ".join(f"{intent} {count}" for intent, count in counts.items()))


def _version_cells(row: ModelVersion) -> list[str]:
    scores = row.metrics.get("gate", {}).get("candidate") or {}
    return [
        row.version,
        row.kind,
        row.status.value,
        f"{scores['accuracy']:.3f}" if "accuracy" in scores else "",
        f"{scores['macro_f1']:.3f}" if "macro_f1" in scores else "",
        row.data_hash,
        f"{row.created_at:%Y-%m-%d %H:%M}",
        f"{row.promoted_at:%Y-%m-%d %H:%M}" if row.promoted_at else "",
    ]


@model_app.command("list")
def list_models() -> None:
    """Every registered model version with its status and gate figures."""
    table = Table("version", "kind", "status", "accuracy", "macro-F1", "data hash", "created", "promoted")
    kefu = kefu_or_exit()
    try:
        with kefu.uow() as uow:
            for row in registry.list_versions(uow.session):
                table.add_row(*_version_cells(row))
    finally:
        kefu.dispose()
    console.print(table)


def _switch(version: str, reason: str, user: str, rollback: bool) -> None:
    kefu = kefu_or_exit()
    try:
        settings = kefu.settings
        switch = registry.rollback if rollback else registry.promote
        promotion = switch(
            kefu.uow,
            version,
            settings.models_dir,
            settings.rasa_url,
            _user_id(kefu, user),
            reason,
            rasa_token=settings.rasa_token,
            rasa_pulls=settings.model_server,
        )
    except KefuError as error:
        fail(str(error))
    finally:
        kefu.dispose()
    console.print(f"{promotion.version} is active. {promotion.rasa_message}")


@model_app.command("promote")
def promote(
    version: str,
    reason: str = typer.Option("", help="Required to promote a version the gate refused (audited)."),
    user: str = typer.Option("", help="Username recorded in the audit trail."),
) -> None:
    """Make a version active and hot-reload the running Rasa server."""
    _switch(version, reason, user, rollback=False)


@model_app.command("rollback")
def rollback(
    version: str,
    reason: str = typer.Option("", help="Why (audited); required if the gate had refused that version."),
    user: str = typer.Option("", help="Username recorded in the audit trail."),
) -> None:
    """Go back to an earlier version and hot-reload the running Rasa server."""
    _switch(version, reason, user, rollback=True)
