"""A real triage assessment stored on a ticket: score, each factor's points and the SLA, shown in the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.bootstrap import Kefu
from router.crm.models import Ticket
from router.triage import Triage, train_default_model
from router.triage.config import FACTORS
from tests.e2e.conftest import open_demo_ticket
from tests.integration.test_web_console import login

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def triage(tmp_path_factory: pytest.TempPathFactory) -> Triage:
    """The default model trained from data/ (our own sentiment set only, to keep it quick)."""
    out = tmp_path_factory.mktemp("models") / "triage"
    train_default_model(out, DATA_DIR, shared_data_dir=tmp_path_factory.mktemp("no-shared-data"))
    return Triage.load(out, DATA_DIR / "triage")


def test_ticket_keeps_every_factor_and_the_console_shows_them(seeded: Kefu, triage: Triage) -> None:
    text = "我的信用卡被人盗刷了，马上处理，不然我找律师投诉到12315！"
    assessment = triage.assess(text, "zh", "vip", repeat_contacts_7d=3, waited_minutes=90)
    assert set(assessment.urgency_factors) == set(FACTORS)
    fields = {
        name: value
        for name, value in assessment.to_dict().items()
        if name not in {"negativity", "cues"}  # the routing service takes the rest
    }
    ticket_id = open_demo_ticket(seeded, "factors-customer", text, **fields)
    with seeded.uow() as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        assert ticket.urgency_factors == assessment.urgency_factors
        assert ticket.urgency_score == pytest.approx(sum(assessment.urgency_factors.values()), abs=0.01)
        assert ticket.priority == assessment.priority == 1
        band = triage.config.urgency.band_for(assessment.urgency_score)
        minutes = (ticket.first_response_due_at - ticket.created_at).total_seconds() / 60
        assert minutes == pytest.approx(band.first_response_minutes, abs=1)
    supervisor, _ = login(seeded, "supervisor")
    page = supervisor.get(f"/console/tickets/{ticket_id}").text
    queue = supervisor.get("/console?tab=team").text
    for name, points in assessment.urgency_factors.items():
        assert f"{name} {points:.2f}" in page
        assert f"{name} {points:.2f}" in queue
