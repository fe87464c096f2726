"""``kefu worker``: the background loop that keeps queues moving and SLAs watched."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass

from router.accounts.login_throttle import prune_expired
from router.bootstrap import Kefu
from router.crm.models import utcnow
from router.retention import PRUNE_INTERVAL_S, run_tracker_retention
from router.routing.assignment import assign_waiting
from router.routing.escalation import escalate_due
from router.routing.policy import routing_policy
from router.routing.presence import requeue_stale_agents
from router.turn_catch_up import CATCH_UP_INTERVAL_S, run_turn_catch_up

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did, for logs and tests."""

    requeued_agents: int
    escalated: int
    assigned: int


def sweep(kefu: Kefu) -> SweepResult:
    """One pass: requeue absent agents' tickets, escalate near-breaches, assign what waits, forget ended login
    throttle windows; one transaction each."""
    now, policy = utcnow(), routing_policy(kefu.settings.data_dir)
    with kefu.uow() as uow:
        stale = requeue_stale_agents(uow.session, now, policy=policy)
        uow.commit()
    with kefu.uow() as uow:
        escalated = escalate_due(uow.session, now, policy=policy)
        uow.commit()
    with kefu.uow() as uow:
        assigned = assign_waiting(uow.session)
        uow.commit()
    with kefu.uow() as uow:
        prune_expired(uow.session, now)
        uow.commit()
    return SweepResult(requeued_agents=len(stale), escalated=len(escalated), assigned=assigned)


def run_training_jobs(kefu: Kefu, *, interval_s: float, stop: threading.Event) -> None:
    """Run queued retraining jobs one after another; a retrain takes minutes, so it has a thread of its own."""
    from router.training.jobs import run_next_job

    while not stop.is_set():
        try:
            if run_next_job(kefu):
                continue
        except Exception:
            log.exception("training job runner failed")
        stop.wait(interval_s)


def run_worker(kefu: Kefu, *, interval_s: float, once: bool = False, stop: threading.Event | None = None) -> None:
    """Sweep every ``interval_s`` seconds until SIGTERM/SIGINT (or ``stop``); ``once`` does a single sweep."""
    routing_policy(kefu.settings.data_dir)  # a broken routing.yml stops the worker at start, not at every sweep
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    if not once:
        threading.Thread(
            target=run_training_jobs, args=(kefu,), kwargs={"interval_s": interval_s, "stop": stop}, daemon=True
        ).start()
        threading.Thread(
            target=run_turn_catch_up,
            args=(kefu,),
            kwargs={"interval_s": CATCH_UP_INTERVAL_S, "stop": stop},
            daemon=True,
        ).start()
        threading.Thread(
            target=run_tracker_retention,
            args=(kefu.settings,),
            kwargs={"interval_s": PRUNE_INTERVAL_S, "stop": stop},
            daemon=True,
        ).start()
    while True:
        try:
            result = sweep(kefu)
            if result.requeued_agents or result.escalated or result.assigned:
                log.info("sweep: %s", result)
        except Exception:
            # A database hiccup must not kill the loop; the next sweep retries from the database's state.
            log.exception("worker sweep failed")
            if once:
                raise
        if once or stop.wait(interval_s):
            return
