"""`kefu worker` also runs queued retraining jobs: an admin's Retrain button works with no web process left."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from router.bootstrap import Kefu
from router.crm.models import Job, JobStatus
from router.settings import PROJECT_ROOT
from router.training.jobs import enqueue_retrain
from router.worker import run_worker
from tests.support.crm import make_kefu


def test_worker_claims_a_queued_retrain_and_records_its_outcome(sqlite_url: str, tmp_path: Path) -> None:
    # No training data at all (only the routing policy the worker starts with): the job must fail fast, and the
    # failure must land on the job row with its log.
    data_dir = tmp_path / "no-training-data"
    (data_dir / "triage").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "data" / "triage" / "routing.yml", data_dir / "triage" / "routing.yml")
    kefu: Kefu = make_kefu(sqlite_url, tmp_path, data_dir=data_dir, models_dir=tmp_path / "models")
    with kefu.uow() as uow:
        job_id = enqueue_retrain(uow.session, None).id
        uow.commit()
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(kefu,), kwargs={"interval_s": 0.2, "stop": stop})
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with kefu.uow() as uow:
                job = uow.session.get(Job, job_id)
                status, finished_at, log = job.status, job.finished_at, job.log or job.message
            if status in (JobStatus.succeeded, JobStatus.failed):
                break
            time.sleep(0.5)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert status is JobStatus.failed
    assert finished_at is not None
    assert "no intent examples" in log
    kefu.dispose()
