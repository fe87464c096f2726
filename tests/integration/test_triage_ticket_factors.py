"""A real triage assessment stored on a ticket: score, each factor's points and the SLA, shown in the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.bootstrap import Kefu
from router.crm.models import Ticket
from router.triage import Triage
from router.triage.config import FACTORS
from tests.support.crm import open_demo_ticket
from tests.support.web import login

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def triage(default_triage_model_dir: Path) -> Triage:
    """The default model trained from data/ (our own sentiment set only, to keep it quick)."""
    return Triage.load(default_triage_model_dir, DATA_DIR / "triage")


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


def test_a_danger_floor_is_stored_and_the_agent_sees_which_floor_and_why(seeded: Kefu, triage: Triage) -> None:
    text = "my kettle caught fire and burned my hand"
    assessment = triage.assess(text, "en")
    assert assessment.priority == 1 and assessment.category == "product_safety"
    floor = assessment.floors[0]
    assert floor["name"] == "safety" and floor["cue_words"]["safety"] and floor["risk"]["terms"]
    fields = {name: value for name, value in assessment.to_dict().items() if name not in {"negativity", "cues"}}
    ticket_id = open_demo_ticket(seeded, "floor-customer", text, **fields)
    with seeded.uow() as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        assert ticket.priority == 1 and ticket.urgency_floors == assessment.floors
        assert ticket.team.name == "safety"
    supervisor, _ = login(seeded, "supervisor")
    page = supervisor.get(f"/console/tickets/{ticket_id}").text
    assert 'id="floor-safety"' in page and "危险底线 Danger floor <b>safety</b>" in page
    assert " · ".join(floor["cue_words"]["safety"]) in page
    assert f"risk model safety {floor['risk']['probability'] * 100:.0f}%" in page
    detail = supervisor.get(f"/api/tickets/{ticket_id}").json()
    assert detail["priority"] == 1 and detail["urgency_floors"] == assessment.floors
    # The queue shows it too, so a safety ticket stands out before anyone opens it.
    queue = supervisor.get("/console?tab=team").text
    assert '<span class="tag floor-tag">≥P1 safety</span>' in queue


def test_fraud_while_money_is_still_leaving_says_so(seeded: Kefu, triage: Triage) -> None:
    text = "卡被盗刷了，刚刚又扣了一笔，还在扣"
    assessment = triage.assess(text, "zh")
    fraud = next(floor for floor in assessment.floors if floor["name"] == "fraud")
    assert assessment.priority == 1 and fraud["ongoing"] == "money_still_leaving"
    fields = {name: value for name, value in assessment.to_dict().items() if name not in {"negativity", "cues"}}
    ticket_id = open_demo_ticket(seeded, "fraud-customer", text, **fields)
    supervisor, _ = login(seeded, "supervisor")
    page = supervisor.get(f"/console/tickets/{ticket_id}").text
    assert "仍在发生 still happening (money_still_leaving)" in page and "又扣了" in page
