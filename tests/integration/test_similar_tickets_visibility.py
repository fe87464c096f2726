"""Similar tickets over the real API show an agent only their own teams' tickets; supervisors see every team's."""

from __future__ import annotations

from sqlalchemy import select

from router.analytics.similar import similar_tickets
from router.bootstrap import Kefu
from router.crm.models import Team
from tests.support.crm import open_demo_ticket
from tests.support.web import bearer

LOST_PARCEL = "快递显示已签收，但我根本没收到包裹，订单 55210"


def test_an_agent_never_gets_another_teams_ticket_even_the_most_similar(seeded: Kefu) -> None:
    supervisor = bearer(seeded, "supervisor")
    # A word-for-word twin in billing (which lina is not in), and a looser match in her own logistics team.
    twin = open_demo_ticket(seeded, "web:sim-1", LOST_PARCEL, category="payment_billing", team="billing")
    own = open_demo_ticket(seeded, "web:sim-2", "快递显示签收了，包裹没收到", team="logistics")
    for ticket_id, summary in ((twin, "退款已原路退回"), (own, "联系快递找回包裹，已重新派送")):
        resolved = supervisor.post(f"/api/tickets/{ticket_id}/resolve", json={"summary": summary})
        assert resolved.status_code == 200, resolved.text
    current = open_demo_ticket(seeded, "web:sim-3", LOST_PARCEL, team="logistics")

    everyone = supervisor.get(f"/api/tickets/{current}/similar?k=5").json()
    assert [found["ticket_id"] for found in everyone][:2] == [twin, own]  # the rules let supervisors see every team

    for_lina = bearer(seeded, "lina").get(f"/api/tickets/{current}/similar?k=5")
    assert for_lina.status_code == 200
    assert [(found["ticket_id"], found["resolution"]) for found in for_lina.json()] == [
        (own, "联系快递找回包裹，已重新派送")
    ]


def test_the_domain_function_ranks_only_the_teams_it_is_given(seeded: Kefu) -> None:
    twin = open_demo_ticket(seeded, "web:sim-4", LOST_PARCEL, category="payment_billing", team="billing")
    bearer(seeded, "supervisor").post(f"/api/tickets/{twin}/resolve", json={"summary": "已退款"})
    current = open_demo_ticket(seeded, "web:sim-5", LOST_PARCEL, team="logistics")
    with seeded.uow() as uow:
        teams = dict(uow.session.execute(select(Team.name, Team.id)).all())
        found = similar_tickets(uow.session, current, visible_teams=None)
        assert [(t.ticket_id, t.resolution) for t in found] == [(twin, "已退款")]
        assert [t.ticket_id for t in similar_tickets(uow.session, current, visible_teams={teams["billing"]})] == [twin]
        assert similar_tickets(uow.session, current, visible_teams={teams["logistics"]}) == []
        assert similar_tickets(uow.session, current, visible_teams=set()) == []  # an agent in no team sees none
