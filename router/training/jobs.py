"""Retraining as a background job: one unfinished job at a time (a database index), progress and log on the row."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from router.bootstrap import Kefu
from router.crm.models import Job, JobStatus, utcnow
from router.errors import Conflict, NotFound

if TYPE_CHECKING:
    from router.training.pipeline import RetrainResult

RETRAIN = "retrain"
# Progress is written at most this often: a Rasa log line every few milliseconds must not hammer the database.
FLUSH_INTERVAL_SECONDS = 0.5
MAX_LOG_CHARS = 200_000
# The running process writes the job's heartbeat this often; a heartbeat older than STALE_AFTER means it died.
HEARTBEAT_INTERVAL_SECONDS = 10.0
STALE_AFTER = timedelta(seconds=60)
# A job whose processes keep dying (out of memory, say) is failed after this many starts instead of retried forever.
MAX_ATTEMPTS = 3


def enqueue_retrain(session: Session, user_id: int | None, tolerance: float | None = None) -> Job:
    """Queue a retraining (``tolerance`` None: the gate's KEFU_GATE_TOLERANCE); Conflict while another is unfinished."""
    job = Job(kind=RETRAIN, status=JobStatus.queued, params={"tolerance": tolerance}, created_by=user_id)
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        running = unfinished_job(session)
        raise Conflict(f"retraining job {running.id if running else '?'} is already queued or running") from None
    return job


def unfinished_job(session: Session) -> Job | None:
    """The queued or running retraining, if any."""
    return session.execute(
        select(Job).where(Job.kind == RETRAIN, Job.status.in_((JobStatus.queued, JobStatus.running)))
    ).scalar_one_or_none()


def get_job(session: Session, job_id: int) -> Job:
    """One job with its progress and log, for the progress bar."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def recent_jobs(session: Session, limit: int = 10) -> list[Job]:
    """The latest jobs, newest first, for the admin page."""
    return list(session.execute(select(Job).order_by(Job.id.desc()).limit(limit)).scalars())


def claim(session: Session, job_id: int) -> bool:
    """Atomically move a queued job to running; False when another process got it first."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.queued)
        .values(status=JobStatus.running, started_at=utcnow(), heartbeat_at=utcnow(), message="starting")
    )
    return result.rowcount == 1


def take_over_stale_jobs(session: Session) -> int:
    """Queue again the running jobs whose process stopped beating, for any worker to claim; fail them after
    MAX_ATTEMPTS starts. Returns how many were taken over or failed."""
    stale = session.execute(
        select(Job)
        .where(
            Job.status == JobStatus.running, func.coalesce(Job.heartbeat_at, Job.started_at) < utcnow() - STALE_AFTER
        )
        .with_for_update(skip_locked=True)
    ).scalars()
    count = 0
    for job in stale:
        attempts = int(job.params.get("attempts", 1))
        if attempts >= MAX_ATTEMPTS:
            job.status, job.finished_at = JobStatus.failed, utcnow()
            job.message = f"abandoned: its process stopped {attempts} times"
        else:
            job.status, job.message = JobStatus.queued, "taken over: its process stopped; queued again"
            job.params = {**job.params, "attempts": attempts + 1}
        count += 1
    return count


def beat(kefu: Kefu, job_id: int) -> None:
    """Record that the job's process is alive, in a transaction of its own."""
    with kefu.uow() as uow:
        uow.session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.running).values(heartbeat_at=utcnow())
        )
        uow.commit()


@contextmanager
def heartbeat(kefu: Kefu, job_id: int, interval_s: float = HEARTBEAT_INTERVAL_SECONDS) -> Iterator[None]:
    """Beat for ``job_id`` from a thread while the body runs: a Rasa training step can be silent for minutes."""
    stop = threading.Event()

    def keep_beating() -> None:
        while not stop.wait(interval_s):
            try:
                beat(kefu, job_id)
            except Exception:
                # A missed beat is retried at the next one; only a long silence lets another worker take over.
                continue

    thread = threading.Thread(target=keep_beating, name=f"job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class JobReporter:
    """Writes a running job's progress, message and log to its row, batched in short transactions."""

    def __init__(self, kefu: Kefu, job_id: int) -> None:
        self._kefu = kefu
        self._job_id = job_id
        self._pending_log: list[str] = []
        self._progress = 0.0
        self._message = ""
        self._last_flush = 0.0

    @property
    def fraction(self) -> float:
        """How far the job has got (a failed job's bar stays there on the page)."""
        return self._progress

    def progress(self, fraction: float, message: str) -> None:
        """Record a step (always written at once: steps are few)."""
        self._progress, self._message = fraction, message
        self._pending_log.append(f"[{fraction:4.0%}] {message}")
        self.flush()

    def log(self, line: str) -> None:
        """Add a log line (written with the next flush)."""
        self._pending_log.append(line)
        if time.monotonic() - self._last_flush > FLUSH_INTERVAL_SECONDS:
            self.flush()

    def flush(self, status: JobStatus | None = None) -> None:
        """Write what has accumulated; with ``status``, also finish the job."""
        with self._kefu.uow() as uow:
            job = get_job(uow.session, self._job_id)
            job.progress, job.message = self._progress, self._message[:255]
            if self._pending_log:
                job.log = (job.log + "\n".join(self._pending_log) + "\n")[-MAX_LOG_CHARS:]
            if status is not None:
                job.status, job.finished_at = status, utcnow()
            uow.commit()
        self._pending_log = []
        self._last_flush = time.monotonic()


def run_job(kefu: Kefu, job_id: int, reporter: JobReporter | None = None) -> RetrainResult | None:
    """Claim and run a queued retraining; None if someone else claimed it. Failures end on the row with the log."""
    with kefu.uow() as uow:
        job = get_job(uow.session, job_id)
        claimed = claim(uow.session, job_id)
        tolerance, user_id = job.params.get("tolerance"), job.created_by
        uow.commit()
    if not claimed:
        return None
    # The pipeline pulls in scikit-learn and pandas: imported here, queueing and listing jobs (the web app, every
    # `kefu` command) do not pay for it.
    from router.training.pipeline import retrain

    reporter = reporter or JobReporter(kefu, job_id)
    try:
        with heartbeat(kefu, job_id):
            result = retrain(kefu, reporter.progress, reporter.log, user_id=user_id, tolerance=tolerance)
    except Exception as error:
        reporter.log(traceback.format_exc())
        reporter.progress(reporter.fraction, f"failed: {str(error).splitlines()[0][:200]}")
        reporter.flush(JobStatus.failed)
        raise
    reporter.flush(JobStatus.succeeded)
    with kefu.uow() as uow:
        get_job(uow.session, job_id).params = {"tolerance": result.intent_report.tolerance, "version": result.version}
        uow.commit()
    return result


def run_next_job(kefu: Kefu) -> bool:
    """For ``kefu worker``'s loop: run the oldest queued retraining if there is one; True when it ran one."""
    with kefu.uow() as uow:
        take_over_stale_jobs(uow.session)
        job_id = uow.session.execute(
            select(Job.id).where(Job.kind == RETRAIN, Job.status == JobStatus.queued).order_by(Job.id).limit(1)
        ).scalar_one_or_none()
        uow.commit()
    if job_id is None:
        return False
    try:
        run_job(kefu, job_id)
    except Exception:
        # Already recorded on the job row with its log; the worker goes on serving other jobs.
        return True
    return True
