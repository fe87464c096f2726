"""The console over real HTTP on a real CRM (SQLite and PostgreSQL): login, visibility, escaping and bad input."""

from __future__ import annotations

import csv
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from router.bootstrap import Kefu, bootstrap
from router.crm.interactions import Turn, record_turns
from router.crm.models import (
    Interaction,
    Speaker,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    TrainingExample,
)
from router.settings import Settings, get_settings
from router.training.cli import data_app
from router.training.labels import COMPLAINT_TARGET
from router.web.app import create_app
from tests.support.crm import DEMO_PASSWORD, open_demo_ticket
from tests.support.rasa_stack import RasaStack
from tests.support.web import CSRF_FIELD, login


def _counts(kefu: Kefu, ticket_id: int) -> tuple[str, int, int, int]:
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        turns = uow.session.scalar(select(func.count(Interaction.id)).where(Interaction.ticket_id == ticket_id))
        events = uow.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.ticket_id == ticket_id))
        return ticket.status.value, ticket.version, turns, events


def test_login_rejects_wrong_password_and_forged_csrf_then_accepts_the_right_one(seeded: Kefu) -> None:
    client = TestClient(create_app(seeded))
    assert client.get("/console", follow_redirects=False).headers["location"].startswith("/login")
    token = CSRF_FIELD.search(client.get("/login").text).group(1)
    wrong = client.post("/login", data={"username": "lina", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    forged = client.post("/login", data={"username": "lina", "password": DEMO_PASSWORD, "csrf_token": "forged"})
    assert forged.status_code == 403
    ok = client.post("/login", data={"username": "lina", "password": DEMO_PASSWORD, "csrf_token": token})
    assert ok.status_code == 200 and "李娜 Li Na" in ok.text
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_agent_sees_own_team_tickets_and_gets_403_for_another_teams_ticket_by_url(seeded: Kefu) -> None:
    logistics = open_demo_ticket(seeded, "web:vis-1", "快递三天没动了")
    billing = open_demo_ticket(seeded, "web:vis-2", "重复扣款了", category="payment_billing", team="billing")
    lina, _ = login(seeded, "lina")  # logistics + after_sales
    team_page = lina.get("/console?tab=team").text
    assert f"/console/tickets/{logistics}" in team_page and f"/console/tickets/{billing}" not in team_page
    assert lina.get(f"/console/tickets/{logistics}").status_code == 200
    assert lina.get(f"/console/tickets/{billing}").status_code == 403
    supervisor, _ = login(seeded, "supervisor")
    assert supervisor.get(f"/console/tickets/{billing}").status_code == 200


def test_customer_script_is_shown_as_text_on_the_queue_and_ticket_page(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:xss", "<script>alert('x')</script> 快递丢了")
    lina, _ = login(seeded, "lina")
    for page in (lina.get("/console?tab=team").text, lina.get(f"/console/tickets/{ticket_id}").text):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page


def test_ticket_page_shows_the_whole_conversation_bot_turns_included_and_the_customers_history(seeded: Kefu) -> None:
    earlier = open_demo_ticket(seeded, "web:whole", "上个月的快递也丢过")
    with seeded.uow() as uow:
        record_turns(
            uow.session,
            [
                Turn(event_key="whole-1", sender_id="web:whole", speaker=Speaker.customer, text="我的快递呢"),
                Turn(event_key="whole-2", sender_id="web:whole", speaker=Speaker.bot, text="请提供订单号 Order no.?"),
            ],
        )
        uow.commit()
    ticket_id = open_demo_ticket(seeded, "web:whole", "订单 123 三天没动了")
    lina, _ = login(seeded, "lina")
    page = lina.get(f"/console/tickets/{ticket_id}").text
    turns = re.findall(r'<div class="turn (\w+)"><span class="meta">[^<]*</span>([^<]*)</div>', page)
    assert turns == [
        ("customer", "上个月的快递也丢过"),
        ("customer", "我的快递呢"),
        ("bot", "请提供订单号 Order no.?"),
        ("customer", "订单 123 三天没动了"),
    ]
    assert f'<a href="/console/tickets/{earlier}">T{earlier:06d}</a> 上个月的快递也丢过' in page


def test_reply_form_delivers_to_web_chat_and_records_the_turn(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:reply-ok", "快递三天没动了")
    lina, csrf = login(seeded, "lina")
    deadline = re.compile(r'id="sla-deadline">([^<]+)<')
    assert deadline.search(lina.get(f"/console/tickets/{ticket_id}").text).group(1) == "首次响应 First response"
    response = lina.post(f"/console/tickets/{ticket_id}/reply", data={"text": "马上为您查询", "csrf_token": csrf})
    assert response.status_code == 200 and "Reply sent" in response.text and "马上为您查询" in response.text
    assert deadline.search(response.text).group(1) == "解决 Resolution"  # answered: the resolution clock runs now
    with seeded.uow() as uow:
        turn = uow.session.scalars(select(Interaction).where(Interaction.speaker == Speaker.agent)).one()
        assert (turn.ticket_id, turn.text, turn.delivery) == (ticket_id, "马上为您查询", "sent")
        assert uow.session.get(Ticket, ticket_id).status is TicketStatus.in_progress


def test_forged_csrf_on_a_ticket_form_is_403_and_changes_nothing(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:csrf", "快递三天没动了")
    lina, _ = login(seeded, "lina")
    before = _counts(seeded, ticket_id)
    for action, data in [("reply", {"text": "hi"}), ("resolve", {}), ("notes", {"text": "n"})]:
        forged = lina.post(f"/console/tickets/{ticket_id}/{action}", data={**data, "csrf_token": "forged"})
        assert forged.status_code == 403
        missing = lina.post(f"/console/tickets/{ticket_id}/{action}", data=data)
        assert missing.status_code == 403
    assert _counts(seeded, ticket_id) == before


def _totals(kefu: Kefu) -> tuple[int, int, int]:
    with kefu.uow() as uow:
        return tuple(uow.session.scalar(select(func.count(model.id))) for model in (Ticket, TicketEvent, Interaction))


def test_unknown_ticket_is_404_as_page_and_json_and_changes_nothing(seeded: Kefu) -> None:
    open_demo_ticket(seeded, "web:unknown", "快递三天没动了")
    lina, csrf = login(seeded, "lina")
    before = _totals(seeded)
    assert lina.get("/console/tickets/999999").status_code == 404
    for action, data in [("reply", {"text": "hi"}), ("resolve", {}), ("notes", {"text": "n"}), ("reopen", {})]:
        response = lina.post(f"/console/tickets/999999/{action}", data={**data, "csrf_token": csrf})
        assert response.status_code == 404 and "does not exist" in response.text
    assert lina.get("/api/tickets/999999").json()["status"] == 404
    assert _totals(seeded) == before


def test_every_action_on_another_teams_ticket_by_url_is_403_and_changes_nothing(seeded: Kefu) -> None:
    own = open_demo_ticket(seeded, "web:other-team", "快递也没到")
    billing = open_demo_ticket(seeded, "web:other-team", "重复扣款了", category="payment_billing", team="billing")
    lina, csrf = login(seeded, "lina")  # logistics + after_sales
    before = _counts(seeded, billing)
    actions = [
        ("reply", {"text": "hi"}),
        ("notes", {"text": "peek"}),
        ("resolve", {}),
        ("reopen", {}),
        ("transfer", {"team_id": "1"}),
        ("merge", {"into": f"T{own:06d}"}),
    ]
    for action, data in actions:
        response = lina.post(f"/console/tickets/{billing}/{action}", data={**data, "csrf_token": csrf})
        assert response.status_code == 403, (action, response.status_code)
        assert "another team" in response.text
    assert _counts(seeded, billing) == before


def test_oversized_and_empty_replies_are_422_and_store_nothing(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:big", "快递三天没动了")
    lina, csrf = login(seeded, "lina")
    before = _counts(seeded, ticket_id)
    for text in ["字" * 4001, "   "]:
        response = lina.post(f"/console/tickets/{ticket_id}/reply", data={"text": text, "csrf_token": csrf})
        assert response.status_code == 422
    assert _counts(seeded, ticket_id) == before


def test_reply_to_a_merged_ticket_is_409_and_stores_nothing(seeded: Kefu) -> None:
    duplicate = open_demo_ticket(seeded, "web:closed", "快递三天没动了")
    kept = open_demo_ticket(seeded, "web:closed", "快递还是没到")
    lina, csrf = login(seeded, "lina")
    merged = lina.post(f"/console/tickets/{duplicate}/merge", data={"into": f"T{kept:06d}", "csrf_token": csrf})
    assert merged.status_code == 200 and f"Merged into T{kept:06d}" in merged.text
    before = _counts(seeded, duplicate)
    response = lina.post(f"/console/tickets/{duplicate}/reply", data={"text": "still there?", "csrf_token": csrf})
    assert response.status_code == 409 and "takes no replies" in response.text
    assert _counts(seeded, duplicate) == before
    unknown = lina.post(f"/console/tickets/{kept}/merge", data={"into": "T999999", "csrf_token": csrf})
    assert unknown.status_code == 404


def test_two_agents_resolving_the_same_version_second_gets_409(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:race", "快递三天没动了")
    lina, lina_csrf = login(seeded, "lina")
    alice, alice_csrf = login(seeded, "alice")
    version = _counts(seeded, ticket_id)[1]
    first = lina.post(f"/console/tickets/{ticket_id}/resolve", data={"csrf_token": lina_csrf, "version": version})
    assert first.status_code == 200
    after_first = _counts(seeded, ticket_id)
    second = alice.post(f"/console/tickets/{ticket_id}/resolve", data={"csrf_token": alice_csrf, "version": version})
    assert second.status_code == 409
    assert _counts(seeded, ticket_id) == after_first


def test_notes_transfer_and_reopen_from_the_ticket_page(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:flow", "快递三天没动了")
    supervisor, csrf = login(seeded, "supervisor")
    note = supervisor.post(f"/console/tickets/{ticket_id}/notes", data={"text": "<b>VIP</b> 客户", "csrf_token": csrf})
    assert note.status_code == 200 and "&lt;b&gt;VIP&lt;/b&gt; 客户" in note.text
    billing_id = re.search(r'<option value="(\d+)">[^<]*Billing</option>', note.text).group(1)
    moved = supervisor.post(f"/console/tickets/{ticket_id}/transfer", data={"team_id": billing_id, "csrf_token": csrf})
    assert moved.status_code == 200 and "Transferred" in moved.text
    lina, _ = login(seeded, "lina")  # not in billing any more: the ticket left her sight
    assert lina.get(f"/console/tickets/{ticket_id}").status_code == 403
    supervisor.post(f"/console/tickets/{ticket_id}/resolve", data={"csrf_token": csrf})
    reopened = supervisor.post(f"/console/tickets/{ticket_id}/reopen", data={"csrf_token": csrf})
    assert reopened.status_code == 200 and "Reopened" in reopened.text
    assert _counts(seeded, ticket_id)[0] == "queued"


def test_supervisor_view_is_for_supervisors_only(seeded: Kefu) -> None:
    open_demo_ticket(seeded, "web:sup", "快递三天没动了")
    lina, _ = login(seeded, "lina")
    assert lina.get("/supervisor").status_code == 403
    supervisor, _ = login(seeded, "supervisor")
    page = supervisor.get("/supervisor")
    assert page.status_code == 200 and "Logistics" in page.text and "Alice Chen" in page.text


def test_presence_toggle_and_heartbeat(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:presence", "快递三天没动了")
    lina, csrf = login(seeded, "lina")
    assert lina.post("/console/presence", data={"presence": "online", "csrf_token": csrf}).status_code == 200
    with seeded.uow() as uow:
        assert uow.session.get(Ticket, ticket_id).status is TicketStatus.assigned  # going online pulled it
    beat = lina.post("/console/heartbeat", headers={"X-CSRF-Token": csrf})
    assert beat.status_code == 200 and beat.json()["presence"] == "online"
    assert lina.post("/console/presence", data={"presence": "asleep", "csrf_token": csrf}).status_code == 422


def test_two_agents_resolving_at_the_same_moment_exactly_one_wins(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:race-live", "快递三天没动了")
    agents = [login(seeded, "lina"), login(seeded, "alice")]
    barrier = threading.Barrier(len(agents))

    def resolve(client: TestClient, csrf: str) -> int:
        barrier.wait()
        return client.post(f"/console/tickets/{ticket_id}/resolve", data={"csrf_token": csrf}).status_code

    with ThreadPoolExecutor(max_workers=len(agents)) as pool:
        statuses = sorted(pool.map(lambda agent: resolve(*agent), agents))
    assert statuses == [200, 409]
    with seeded.uow() as uow:
        resolved_events = uow.session.scalar(
            select(func.count(TicketEvent.id)).where(
                TicketEvent.ticket_id == ticket_id, TicketEvent.kind == TicketEventKind.resolved
            )
        )
        assert resolved_events == 1


def test_resolve_says_when_the_bot_could_not_ask_for_a_rating(seeded: Kefu) -> None:
    ticket_id = open_demo_ticket(seeded, "web:csat", "快递三天没动了")
    lina, csrf = login(seeded, "lina")
    page = lina.get(f"/console/tickets/{ticket_id}").text
    assert 'id="presence"' in page  # the presence toggle (and its heartbeat) is on every console page
    resolved = lina.post(f"/console/tickets/{ticket_id}/resolve", data={"csrf_token": csrf})
    assert resolved.status_code == 200 and "the bot could not ask for a rating" in resolved.text
    assert _counts(seeded, ticket_id)[0] == "resolved"  # the ticket is resolved even though Rasa is down


def test_console_pages_refuse_framing_but_the_web_chat_may_be_embedded(seeded: Kefu) -> None:
    lina, _ = login(seeded, "lina")
    console = lina.get("/console")
    assert console.headers["X-Frame-Options"] == "DENY" and console.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Frame-Options" not in lina.get("/chat").headers


@pytest.mark.rasa
def test_resolving_in_the_console_has_the_real_bot_ask_the_customer_for_a_rating(
    rasa_stack: RasaStack, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=rasa_stack.database_url,
        var_dir=tmp_path / "var",
        rasa_url=rasa_stack.rasa_url,
        rasa_token=rasa_stack.rasa_token,
    )
    kefu = bootstrap(settings)
    sender = "console-csat-1"
    try:
        assert rasa_stack.send(sender, "你好"), rasa_stack.logs()
        ticket_id = open_demo_ticket(kefu, sender, "快递三天没动了")
        lina, csrf = login(kefu, "lina")
        resolved = lina.post(f"/console/tickets/{ticket_id}/resolve", data={"csrf_token": csrf})
        assert resolved.status_code == 200 and "the customer was asked for a rating" in resolved.text
        deadline = time.monotonic() + 30  # the event broker logs the bot's question a moment later
        while not (asked := _bot_turns_after_resolution(kefu, ticket_id)) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert any(re.search("1.*5", text) for text in asked), asked
    finally:
        kefu.dispose()


def _bot_turns_after_resolution(kefu: Kefu, ticket_id: int) -> list[str]:
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        return list(
            uow.session.scalars(
                select(Interaction.text).where(
                    Interaction.conversation_id == ticket.conversation_id,
                    Interaction.speaker == Speaker.bot,
                    Interaction.created_at >= ticket.resolved_at,
                )
            )
        )


def _category_state(kefu: Kefu, ticket_id: int) -> tuple[str, int, int, list[tuple[str, str]]]:
    """The ticket's category, version and audit-trail length, and its complaint training examples."""
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        events = uow.session.scalar(select(func.count(TicketEvent.id)).where(TicketEvent.ticket_id == ticket_id))
        examples = uow.session.execute(
            select(TrainingExample.label, TrainingExample.text).where(
                TrainingExample.ticket_id == ticket_id, TrainingExample.target == COMPLAINT_TARGET
            )
        ).all()
        return ticket.category, ticket.version, events, [tuple(row) for row in examples]


def test_agent_corrects_the_category_on_the_ticket_page_and_kefu_data_export_writes_it(
    seeded: Kefu, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = open_demo_ticket(seeded, "web:recategorise", "快递到了，但杯子是碎的")  # filed under delivery
    lina, csrf = login(seeded, "lina")  # logistics + after_sales
    page = lina.get(f"/console/tickets/{ticket_id}").text
    assert '<option value="delivery" selected>物流配送 Delivery</option>' in page
    assert "改正分类 Correct category" in page
    version = int(re.search(r'id="category-form">.*?name="version" value="(\d+)"', page, re.S).group(1))

    response = lina.post(
        f"/console/tickets/{ticket_id}/category",
        data={"category": "product_quality", "version": version, "csrf_token": csrf},
    )
    assert response.status_code == 200 and "Category corrected to product_quality" in response.text
    assert 'id="ticket-category">product_quality<' in response.text
    assert '<option value="product_quality" selected>商品质量 Product fault</option>' in response.text
    assert "category_corrected delivery → product_quality · 李娜 Li Na" in response.text
    category, _, _, [(label, text)] = _category_state(seeded, ticket_id)
    assert category == label == "product_quality" and "快递到了，但杯子是碎的" in text

    export_dir = tmp_path / "exported"
    monkeypatch.setenv("KEFU_DATABASE_URL", seeded.settings.database_url)
    monkeypatch.setenv("KEFU_DATA_DIR", str(export_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(data_app, ["export"], catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0 and "1 complaint examples" in result.output, result.output
    with (export_dir / "triage" / "reviewed.csv").open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [["text", "category"], [text, "product_quality"]]


def test_category_correction_by_another_team_forged_csrf_stale_page_or_unknown_category_changes_nothing(
    seeded: Kefu,
) -> None:
    billing = open_demo_ticket(seeded, "web:recat-billing", "重复扣款了", category="payment_billing", team="billing")
    own = open_demo_ticket(seeded, "web:recat-own", "快递三天没动了")
    lina, csrf = login(seeded, "lina")  # logistics + after_sales: not billing
    before = {ticket_id: _category_state(seeded, ticket_id) for ticket_id in (billing, own)}
    other_team = lina.post(f"/console/tickets/{billing}/category", data={"category": "other", "csrf_token": csrf})
    assert other_team.status_code == 403 and "another team" in other_team.text
    forged = lina.post(f"/console/tickets/{own}/category", data={"category": "other", "csrf_token": "forged"})
    missing = lina.post(f"/console/tickets/{own}/category", data={"category": "other"})
    assert forged.status_code == missing.status_code == 403
    stale = lina.post(
        f"/console/tickets/{own}/category",
        data={"category": "other", "version": before[own][1] - 1, "csrf_token": csrf},
    )
    assert stale.status_code == 409
    unknown = lina.post(f"/console/tickets/{own}/category", data={"category": "weather", "csrf_token": csrf})
    assert unknown.status_code == 422 and "unknown complaint category" in unknown.text
    gone = lina.post("/console/tickets/999999/category", data={"category": "other", "csrf_token": csrf})
    assert gone.status_code == 404
    assert {ticket_id: _category_state(seeded, ticket_id) for ticket_id in (billing, own)} == before
    assert before[billing][3] == before[own][3] == []
