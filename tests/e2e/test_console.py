"""Browser tests of the agent console: Debian chromium through Playwright against uvicorn on a real SQLite CRM."""

from __future__ import annotations

import re

import pytest

from router.bootstrap import bootstrap
from router.crm.models import Ticket, TicketStatus
from router.web.webchat import CHAT_COOKIE, chat_session
from router.worker import sweep
from tests.support.browser import ARTIFACTS_DIR, log_in
from tests.support.crm import open_demo_ticket
from tests.support.web import WebServer

pytestmark = pytest.mark.browser


def test_agent_sees_a_new_ticket_live_replies_and_the_customer_web_chat_shows_it(
    web_server: WebServer, browser_page
) -> None:
    page = browser_page
    customer = page.context.browser.new_context(locale="zh-CN").new_page()
    customer.goto(f"{web_server.base_url}/chat")
    kefu = bootstrap(web_server.settings)
    cookie = next(c["value"] for c in customer.context.cookies() if c["name"] == CHAT_COOKIE)
    session = chat_session(kefu.secret_key, cookie)  # the page keeps its session in a signed HttpOnly cookie
    assert session

    log_in(page, web_server.base_url, "lina")
    page.goto(f"{web_server.base_url}/console?tab=team")
    page.wait_for_selector("#live-status:has-text('●')")  # the event stream is connected
    assert page.locator("#queue tbody tr").count() == 0

    try:
        ticket_id = open_demo_ticket(kefu, f"web:{session}", "<b>快递</b>三天没有更新了，订单 123")
        row = page.locator(f"#queue tr[data-ticket-id='{ticket_id}']")
        row.wait_for(timeout=10_000)  # arrived over SSE: the page was never reloaded
        assert "<b>快递</b>三天没有更新了" in row.inner_text()  # customer markup shown as text
        assert row.locator(".prio").inner_text() == "P2"
        assert re.search(r"\d+h \d{2}m \d{2}s", row.locator("td.sla").inner_text())
        page.screenshot(path=str(ARTIFACTS_DIR / "console-live-ticket.png"), full_page=True)

        row.get_by_role("link").click()
        page.wait_for_url(re.compile(rf".*/console/tickets/{ticket_id}$"))
        page.fill("#reply-text", "您好，已为您催促快递 — Li Na")
        page.click("#send-reply")
        page.wait_for_selector(".notice:has-text('Reply sent')")
        assert page.locator(".turn.agent").last.inner_text().endswith("您好，已为您催促快递 — Li Na")
        page.screenshot(path=str(ARTIFACTS_DIR / "console-ticket-replied.png"), full_page=True)

        customer.locator(".webchat-turn.agent:has-text('已为您催促快递')").wait_for(timeout=15_000)
        customer.screenshot(path=str(ARTIFACTS_DIR / "webchat-shows-agent-reply.png"))
        with kefu.uow() as uow:
            ticket = uow.session.get(Ticket, ticket_id)
            assert ticket.status is TicketStatus.in_progress and ticket.first_responded_at is not None
    finally:
        kefu.dispose()
        customer.context.close()


def test_supervisor_sees_a_breach_and_its_escalation_then_transfers_a_ticket(
    web_server: WebServer, browser_page
) -> None:
    page = browser_page
    kefu = bootstrap(web_server.settings)
    try:
        ticket_id = open_demo_ticket(kefu, "web:6f1c1f0e-1d7c-4a55-9a57-0c8f7b1c2d3e", "I was charged twice")
        late = open_demo_ticket(kefu, "web:late", "快递一周没到，客服也不回", first_response_minutes=0)
        assert sweep(kefu).escalated == 1  # the worker's sweep: the overdue ticket is escalated
        log_in(page, web_server.base_url, "supervisor")
        page.goto(f"{web_server.base_url}/supervisor")
        assert "Logistics" in page.locator("#team-queues").inner_text()
        breach = page.locator(f"#breaches a[href='/console/tickets/{late}']").locator("xpath=ancestor::tr")
        assert "P1" in breach.inner_text() and "快递一周没到" in breach.inner_text()
        page.wait_for_selector("#breaches td.sla.breached")
        assert re.search(r"首次响应 First response · 级别 level 1", page.locator("#escalations").inner_text())
        page.screenshot(path=str(ARTIFACTS_DIR / "supervisor-breach-escalated.png"), full_page=True)
        page.goto(f"{web_server.base_url}/console/tickets/{ticket_id}")
        page.select_option("#transfer-team", label="账务组 Billing")
        page.click("#transfer")
        page.wait_for_selector(".notice:has-text('Transferred to 账务组 Billing')")
        page.screenshot(path=str(ARTIFACTS_DIR / "supervisor-transferred.png"), full_page=True)
        with kefu.uow() as uow:
            ticket = uow.session.get(Ticket, ticket_id)
            assert ticket.team.name == "billing" and ticket.transfer_count == 1
    finally:
        kefu.dispose()
