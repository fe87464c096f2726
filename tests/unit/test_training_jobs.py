"""Retraining jobs: one unfinished at a time (enforced by the database), claimed once, failures kept with the log."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from router.bootstrap import Kefu
from router.crm.models import Job, JobStatus, utcnow
from router.errors import Conflict
from router.training.jobs import (
    MAX_ATTEMPTS,
    STALE_AFTER,
    claim,
    enqueue_retrain,
    get_job,
    heartbeat,
    run_job,
    run_next_job,
    take_over_stale_jobs,
)
from router.training.nlu_yaml import Example, write_nlu_file
from tests.support.crm import make_kefu


def test_second_retrain_is_refused_while_one_is_unfinished(kefu_any_db: Kefu) -> None:
    with kefu_any_db.uow() as uow:
        first = enqueue_retrain(uow.session, None)
        uow.commit()
    with kefu_any_db.uow() as uow, pytest.raises(Conflict, match=f"job {first.id} is already"):
        enqueue_retrain(uow.session, None)
    with kefu_any_db.uow() as uow:
        assert claim(uow.session, first.id)
        assert not claim(uow.session, first.id), "a job is claimed once"
        uow.commit()
    with kefu_any_db.uow() as uow, pytest.raises(Conflict):
        enqueue_retrain(uow.session, None)
    with kefu_any_db.uow() as uow:
        uow.session.execute(update(Job).where(Job.id == first.id).values(status=JobStatus.succeeded))
        second = enqueue_retrain(uow.session, None)
        uow.commit()
    assert second.id != first.id


def test_failed_run_is_recorded_with_its_log_and_frees_the_slot(sqlite_url: str, tmp_path: Path) -> None:
    # A project without config.yml or domain.yml: staging fails, as a broken checkout would.
    empty_project = tmp_path / "project"
    empty_project.mkdir()
    write_nlu_file(tmp_path / "data" / "nlu" / "greet.yml", [Example("hello", "greet")])
    kefu = make_kefu(sqlite_url, tmp_path, project_dir=empty_project, data_dir=tmp_path / "data")
    try:
        with kefu.uow() as uow:
            job = enqueue_retrain(uow.session, None)
            uow.commit()
        with pytest.raises(FileNotFoundError):
            run_job(kefu, job.id)
        assert run_job(kefu, job.id) is None, "a finished job is not run again"
        with kefu.uow() as uow:
            failed = get_job(uow.session, job.id)
            assert failed.status is JobStatus.failed and failed.finished_at is not None
            assert failed.message.startswith("failed:") and "domain.yml" in failed.log
            enqueue_retrain(uow.session, None)
            uow.commit()
        assert run_next_job(kefu), "the worker runs the queued job and survives its failure"
        assert not run_next_job(kefu), "nothing left to run"
    finally:
        kefu.dispose()


def _running_job(kefu: Kefu, heartbeat_age: timedelta) -> int:
    with kefu.uow() as uow:
        job = enqueue_retrain(uow.session, None)
        uow.session.flush()
        assert claim(uow.session, job.id)
        uow.session.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - heartbeat_age))
        uow.commit()
        return job.id


def test_a_running_job_whose_heartbeat_stopped_is_queued_again_and_claimed_by_another_worker(kefu_any_db: Kefu) -> None:
    job_id = _running_job(kefu_any_db, heartbeat_age=STALE_AFTER + timedelta(seconds=5))
    with kefu_any_db.uow() as uow:
        assert take_over_stale_jobs(uow.session) == 1
        uow.commit()
    with kefu_any_db.uow() as uow:
        job = get_job(uow.session, job_id)
        assert (job.status, job.params["attempts"]) == (JobStatus.queued, 2)
        assert claim(uow.session, job_id), "another worker can claim it"
        uow.commit()


def test_a_job_that_still_beats_is_left_to_its_worker(kefu_any_db: Kefu) -> None:
    job_id = _running_job(kefu_any_db, heartbeat_age=timedelta(seconds=5))
    with kefu_any_db.uow() as uow:
        assert take_over_stale_jobs(uow.session) == 0
        uow.commit()
    with kefu_any_db.uow() as uow:
        assert get_job(uow.session, job_id).status is JobStatus.running


def test_a_job_whose_processes_keep_dying_fails_after_the_last_attempt(kefu_any_db: Kefu) -> None:
    job_id = _running_job(kefu_any_db, heartbeat_age=STALE_AFTER * 2)
    for _ in range(MAX_ATTEMPTS):
        with kefu_any_db.uow() as uow:
            take_over_stale_jobs(uow.session)
            claim(uow.session, job_id)
            uow.session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - STALE_AFTER * 2))
            uow.commit()
    with kefu_any_db.uow() as uow:
        job = get_job(uow.session, job_id)
        assert job.status is JobStatus.failed
        assert f"stopped {MAX_ATTEMPTS} times" in job.message


def test_the_heartbeat_thread_keeps_the_job_fresh_while_its_body_runs(kefu_any_db: Kefu) -> None:
    job_id = _running_job(kefu_any_db, heartbeat_age=STALE_AFTER * 2)
    with heartbeat(kefu_any_db, job_id, interval_s=0.1):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with kefu_any_db.reader() as reader:
                if reader.session.get(Job, job_id).heartbeat_at > utcnow() - timedelta(seconds=5):
                    break
            time.sleep(0.05)
    with kefu_any_db.uow() as uow:
        assert take_over_stale_jobs(uow.session) == 0
