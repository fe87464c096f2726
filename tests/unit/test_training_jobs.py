"""Retraining jobs: one unfinished at a time (enforced by the database), claimed once, failures kept with the log."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from router.bootstrap import Kefu
from router.crm.models import Job, JobStatus
from router.errors import Conflict
from router.training.jobs import claim, enqueue_retrain, get_job, run_job, run_next_job
from tests.conftest import make_kefu


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
