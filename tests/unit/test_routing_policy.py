"""The routing policy file (data/triage/routing.yml): read and checked, and each number really steers the router."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation
from router.crm.models import Agent, Presence, Ticket, TicketStatus, utcnow
from router.errors import InvalidInput
from router.routing.escalation import escalate_due
from router.routing.policy import POLICY_FILE, RoutingPolicy, load_policy, routing_policy
from router.routing.presence import requeue_stale_agents
from router.routing.tickets import reopen_if_recent, resolve
from router.settings import PROJECT_ROOT
from router.worker import run_worker, sweep
from tests.support.crm import make_kefu
from tests.support.routing import make_agent, make_team, new_ticket

SHIPPED = PROJECT_ROOT / "data" / POLICY_FILE


def policy_file(folder: Path, **changes: object) -> Path:
    """A copy of the shipped routing.yml under ``folder``/triage with ``changes`` applied."""
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    path = folder / POLICY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({**raw, **changes}), encoding="utf-8")
    return path


def policy(folder: Path, **changes: object) -> RoutingPolicy:
    """The shipped policy with ``changes``, read through the loader as a process would."""
    return load_policy(policy_file(folder, **changes))


def test_the_shipped_policy_reads_as_documented() -> None:
    assert load_policy(SHIPPED) == RoutingPolicy(
        heartbeat_timeout=timedelta(seconds=90), reopen_within=timedelta(days=7), escalate_when_left=0.2
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"heartbeat_timeout_seconds": 20}, "≥ 60"),
        ({"heartbeat_timeout_seconds": "soon"}, "malformed"),
        ({"reopen_within_days": -1}, "≥ 0"),
        ({"escalate_when_left": 1.5}, "share"),
        ({"escalate_when_left": None}, "malformed"),
    ],
)
def test_a_bad_number_is_refused_with_what_to_fix(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        policy(tmp_path, **changes)


def test_a_missing_or_broken_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_policy(tmp_path / "routing.yml")
    (tmp_path / "routing.yml").write_text("heartbeat_timeout_seconds: [", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_policy(tmp_path / "routing.yml")
    (tmp_path / "routing.yml").write_text("reopen_within_days: 7\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="heartbeat_timeout_seconds"):
        load_policy(tmp_path / "routing.yml")


def test_the_heartbeat_timeout_decides_who_counts_as_gone(kefu: Kefu, tmp_path: Path) -> None:
    five_minutes_ago = utcnow() - timedelta(minutes=5)
    with kefu.uow() as uow:
        silent = make_agent(uow.session, make_team(uow.session, "logistics"), last_heartbeat_at=five_minutes_ago)
        patient = policy(tmp_path, heartbeat_timeout_seconds=600)
        assert requeue_stale_agents(uow.session, policy=patient) == []
        assert uow.session.get(Agent, silent).presence is Presence.online
        strict = policy(tmp_path, heartbeat_timeout_seconds=120)
        assert [agent.id for agent in requeue_stale_agents(uow.session, policy=strict)] == [silent]


def test_the_reopen_window_decides_whether_a_customer_writing_again_reopens(kefu: Kefu, tmp_path: Path) -> None:
    with kefu.uow() as uow:
        agent = uow.session.get(Agent, make_agent(uow.session, make_team(uow.session, "logistics")))
        ticket = new_ticket(uow.session, sender="telegram:42")
        resolve(uow.session, ticket_id=ticket.id, actor=agent.user)
        uow.session.get(Ticket, ticket.id).resolved_at = utcnow() - timedelta(days=2)
        uow.commit()
    with kefu.uow() as uow:
        conversation = current_conversation(uow.session, "telegram:42")
        assert reopen_if_recent(uow.session, conversation, policy=policy(tmp_path, reopen_within_days=1)) is None
        assert uow.session.get(Ticket, ticket.id).status is TicketStatus.resolved
        reopened = reopen_if_recent(uow.session, conversation, policy=policy(tmp_path, reopen_within_days=3))
        assert reopened is not None and reopened.id == ticket.id and reopened.reopen_count == 1


def test_the_escalation_share_decides_how_early_a_ticket_escalates(kefu: Kefu, tmp_path: Path) -> None:
    with kefu.uow() as uow:
        make_agent(uow.session, make_team(uow.session, "logistics"))
        ticket = new_ticket(uow.session)
        halfway = ticket.created_at + (ticket.first_response_due_at - ticket.created_at) * 0.6
        assert escalate_due(uow.session, halfway, policy=policy(tmp_path, escalate_when_left=0.2)) == []
        assert [t.id for t in escalate_due(uow.session, halfway, policy=policy(tmp_path, escalate_when_left=0.5))] == [
            ticket.id
        ]
        assert uow.session.get(Ticket, ticket.id).escalation_level == 1


@pytest.fixture
def kefu_with_data_dir(sqlite_url: str, tmp_path: Path) -> Iterator[Kefu]:
    """A kefu whose data folder is a scratch copy, so a test can edit its routing.yml."""
    data_dir = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data" / "triage", data_dir / "triage")
    app = make_kefu(sqlite_url, tmp_path, data_dir=data_dir)
    yield app
    app.dispose()


def test_the_worker_follows_the_file_in_its_data_folder(kefu_with_data_dir: Kefu) -> None:
    data_dir = kefu_with_data_dir.settings.data_dir
    policy_file(data_dir, heartbeat_timeout_seconds=3600)
    with kefu_with_data_dir.uow() as uow:
        team = make_team(uow.session, "logistics")
        quiet = make_agent(uow.session, team, last_heartbeat_at=utcnow() - timedelta(minutes=10))
        uow.commit()
    assert routing_policy(data_dir).heartbeat_timeout == timedelta(hours=1)
    assert sweep(kefu_with_data_dir).requeued_agents == 0
    with kefu_with_data_dir.uow() as uow:
        assert uow.session.get(Agent, quiet).presence is Presence.online


def test_the_worker_refuses_to_start_on_a_broken_policy(kefu_with_data_dir: Kefu) -> None:
    policy_file(kefu_with_data_dir.settings.data_dir, escalate_when_left=2)
    with pytest.raises(InvalidInput, match="escalate_when_left"):
        run_worker(kefu_with_data_dir, interval_s=0.01, once=True)
