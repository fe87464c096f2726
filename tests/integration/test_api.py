"""The JSON API over real HTTP: bearer tokens, session + CSRF header, visibility, JSON errors, OpenAPI docs."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.models import Interaction, Ticket, TicketStatus
from router.web.app import create_app
from tests.support.crm import open_demo_ticket
from tests.support.web import bearer, login


def _agent_turns(kefu: Kefu, ticket_id: int) -> int:
    with kefu.uow() as uow:
        return uow.session.scalar(
            select(func.count(Interaction.id)).where(
                Interaction.ticket_id == ticket_id, Interaction.agent_id.is_not(None)
            )
        )


def test_token_api_lists_only_visible_tickets_and_replies(seeded: Kefu) -> None:
    mine = open_demo_ticket(seeded, "web:api-1", "<script>x</script> 快递没到")
    other = open_demo_ticket(seeded, "web:api-2", "重复扣款", category="payment_billing", team="billing")
    api = bearer(seeded, "lina")
    listed = {row["id"] for row in api.get("/api/tickets").json()}
    assert mine in listed and other not in listed
    assert api.get(f"/api/tickets/{other}").json() == {
        "error": f"ticket T{other:06d} belongs to another team",
        "status": 403,
    }
    detail = api.get(f"/api/tickets/{mine}").json()
    assert detail["transcript"][0]["text"] == "<script>x</script> 快递没到"  # JSON carries text as data, unescaped
    sent = api.post(f"/api/tickets/{mine}/reply", json={"text": "正在处理", "version": detail["version"]})
    assert sent.status_code == 200 and sent.json()["delivery"] == "sent"
    assert api.get(f"/api/tickets/{mine}").json()["transcript"][-1]["text"] == "正在处理"
    note = api.post(f"/api/tickets/{mine}/notes", json={"text": "checked the courier"})
    assert note.status_code == 201


def test_api_bad_input_is_a_json_4xx_and_changes_nothing(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:api-bad", "快递没到")
    api = bearer(seeded, "lina")
    assert api.post(f"/api/tickets/{ticket_id}/reply", json={"text": "x" * 4001}).status_code == 422
    assert api.post(f"/api/tickets/{ticket_id}/reply", json={"txt": "typo"}).status_code == 422
    assert (
        api.post(
            f"/api/tickets/{ticket_id}/reply", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert api.post("/api/tickets/424242/reply", json={"text": "hi"}).status_code == 404
    assert api.get("/api/tickets?status=sleeping").status_code == 422
    assert api.post(f"/api/tickets/{ticket_id}/transfer", json={}).status_code == 422
    assert _agent_turns(seeded, ticket_id) == 0
    first = api.post(f"/api/tickets/{ticket_id}/resolve", json={"version": 1})
    second = api.post(f"/api/tickets/{ticket_id}/resolve", json={"version": 1})
    assert (first.status_code, second.status_code) == (200, 409)
    with seeded.uow() as uow:
        assert uow.session.get(Ticket, ticket_id).status is TicketStatus.resolved


def test_wrong_or_missing_credentials_are_401(seeded: Kefu) -> None:
    client = TestClient(create_app(seeded))
    assert client.post("/api/tokens", json={"username": "lina", "password": "bad"}).status_code == 401
    assert client.get("/api/tickets").status_code == 401
    client.headers["Authorization"] = "Bearer forged.token.value"
    assert client.get("/api/tickets").status_code == 401


def test_session_api_calls_need_the_csrf_header(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:api-csrf", "快递没到")
    client, csrf = login(seeded, "lina")
    assert client.get("/api/tickets").status_code == 200  # reads need no token
    assert client.post(f"/api/tickets/{ticket_id}/reply", json={"text": "hi"}).status_code == 403
    assert _agent_turns(seeded, ticket_id) == 0
    ok = client.post(f"/api/tickets/{ticket_id}/reply", json={"text": "hi"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and _agent_turns(seeded, ticket_id) == 1


def test_agents_presence_and_openapi_docs(seeded: Kefu) -> None:
    api = bearer(seeded, "alice")
    assert api.put("/api/agents/me/presence", json={"presence": "online"}).json() == {"presence": "online"}
    agents = {row["name"]: row for row in api.get("/api/agents").json()}
    assert agents["Alice Chen"]["presence"] == "online" and "Bob Smith" not in agents  # Bob shares no team
    assert len(bearer(seeded, "supervisor").get("/api/agents").json()) == 7  # the demo organisation's agents
    assert bearer(seeded, "supervisor").put("/api/agents/me/presence", json={"presence": "online"}).status_code == 403
    schema = api.get("/api/openapi.json").json()
    assert {"/api/tickets", "/api/tickets/{ticket_id}/reply", "/api/agents/me/presence"} <= set(schema["paths"])
    assert "swagger-ui" in api.get("/api/docs").text


def test_api_actions_on_another_teams_ticket_are_403_and_change_nothing(seeded: Kefu) -> None:
    other = open_demo_ticket(seeded, "web:api-other", "重复扣款", category="payment_billing", team="billing")
    api = bearer(seeded, "lina")  # logistics + after_sales
    with seeded.uow() as uow:
        before = uow.session.get(Ticket, other).version
    calls = [("reply", {"text": "hi"}), ("notes", {"text": "peek"}), ("transfer", {"team_id": 1}), ("resolve", {})]
    for action, body in calls:
        response = api.post(f"/api/tickets/{other}/{action}", json=body)
        assert response.json() == {"error": f"ticket T{other:06d} belongs to another team", "status": 403}, action
    with seeded.uow() as uow:
        ticket = uow.session.get(Ticket, other)
        assert (ticket.version, ticket.status, ticket.team.name) == (before, TicketStatus.queued, "billing")
    assert _agent_turns(seeded, other) == 0
