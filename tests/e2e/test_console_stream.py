"""The console's live stream over real HTTP: new tickets arrive within seconds, other teams' tickets never do, and a
stream resumes from a cursor, so a console cut off from its stream (in chromium too) catches up once it is back."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from datetime import datetime, timedelta

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import update

from router.bootstrap import bootstrap
from router.crm.models import Ticket, utcnow
from router.web.live import COMMIT_OVERLAP
from tests.support.browser import ARTIFACTS_DIR, log_in
from tests.support.crm import DEMO_PASSWORD, open_demo_ticket
from tests.support.web import WebServer

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def _logged_in(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = CSRF_FIELD.search(client.get("/login").text).group(1)
    client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    return client


def test_stream_pushes_own_team_tickets_only(web_server: WebServer) -> None:
    received: list[dict] = []
    connected = threading.Event()

    def listen(client: httpx.Client) -> None:
        with client.stream("GET", "/console/stream", timeout=httpx.Timeout(30, read=60)) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            connected.set()
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                if any(ticket["category"] == "refund_return" for ticket in received):
                    return  # the last ticket opened: everything before it has been streamed too

    client = _logged_in(web_server.base_url, "lina")  # logistics + after_sales
    listener = threading.Thread(target=listen, args=(client,), daemon=True)
    listener.start()
    assert connected.wait(30)
    kefu = bootstrap(web_server.settings)
    try:
        logistics = open_demo_ticket(kefu, "web:stream-1", "<i>快递</i>没到")
        billing = open_demo_ticket(kefu, "web:stream-2", "扣了两次款", category="payment_billing", team="billing")
        time.sleep(1.5)  # a poll passes between the billing ticket and the last one
        after_sales = open_demo_ticket(kefu, "web:stream-3", "要退货", category="refund_return", team="after_sales")
        listener.join(timeout=30)
    finally:
        kefu.dispose()
        client.close()
    ids = [ticket["id"] for ticket in received]
    assert logistics in ids and after_sales in ids
    assert billing not in ids
    assert next(t for t in received if t["id"] == logistics)["subject"] == "<i>快递</i>没到"  # data, not markup


def _first_poll(client: httpx.Client, **params: str) -> tuple[list[int], str]:
    """The ids of the tickets a new stream sends in its first poll, and the cursor it sends after them."""
    with client.stream("GET", "/console/stream", params=params) as stream:
        assert stream.status_code == 200
        ticket_ids = []
        for line in stream.iter_lines():
            if line.startswith("data: "):
                ticket_ids.append(json.loads(line[6:])["id"])
            if line.startswith("id: "):
                return ticket_ids, line[4:]
    raise AssertionError("the stream ended without a cursor")


def test_a_stream_resumes_from_the_cursor_it_is_given_and_sends_its_own(web_server: WebServer) -> None:
    client = _logged_in(web_server.base_url, "lina")
    kefu = bootstrap(web_server.settings)
    try:
        missed = open_demo_ticket(kefu, "web:while-away", "快递丢了")
        with kefu.uow() as uow:  # changed while the page was away, longer ago than a fresh stream looks back
            uow.session.execute(
                update(Ticket).where(Ticket.id == missed).values(updated_at=utcnow() - timedelta(minutes=2))
            )
            uow.commit()
        resumed, cursor = _first_poll(client, since=(utcnow() - timedelta(minutes=10)).isoformat())
        fresh, _ = _first_poll(client)
    finally:
        kefu.dispose()
        client.close()
    assert missed in resumed
    assert missed not in fresh
    assert utcnow() - timedelta(minutes=1) < datetime.fromisoformat(cursor) < utcnow()  # it moved on to about now


HOSTILE_SINCE = [
    "yesterday",
    "' OR 1=1 --",
    "",
    "9" * 5000,
    "2024-06-03T09:00:00",  # no UTC offset
    "2999-01-01T00:00:00+00:00",  # the future
]
# Cursors older than the resume window: the page is to reload.
EXPIRED_SINCE = ["2001-01-01T00:00:00+00:00", "0001-01-01T00:00:00+01:00"]


def test_a_bad_resume_point_is_refused_with_400_or_410_and_holds_no_stream_slot(web_server: WebServer) -> None:
    client = _logged_in(web_server.base_url, "lina")
    try:
        for since, status in [(since, 400) for since in HOSTILE_SINCE] + [(since, 410) for since in EXPIRED_SINCE]:
            answer = client.get("/console/stream", params={"since": since}, headers={"Accept": "application/json"})
            assert answer.status_code == status, (since, answer.text)
            assert answer.json()["error"].startswith("since ")
        from_event_source = client.get("/console/stream", headers={"Last-Event-ID": "<script>"})
        assert from_event_source.status_code == 400  # an error page, not a traceback
        assert "since must be a cursor" in from_event_source.text
        # More refusals than the user has stream slots, and a stream still opens: none of them took one.
        assert len(HOSTILE_SINCE) > web_server.settings.event_streams_per_client
        assert _first_poll(client, since=(utcnow() - timedelta(minutes=1)).isoformat())
    finally:
        client.close()


def test_a_stream_without_a_session_answers_401_to_the_console_page_not_the_login_form(web_server: WebServer) -> None:
    # The page asks as it does in console.js: a refusal must be a status it can tell apart, not a redirect.
    answer = httpx.get(
        f"{web_server.base_url}/console/stream", headers={"Accept": "text/event-stream, application/json"}
    )
    assert (answer.status_code, answer.json()["status"]) == (401, 401)


@contextmanager
def _stream_slots_taken(web_server: WebServer) -> Iterator[None]:
    """Every live stream lina may hold, open in her other tabs until the block ends."""
    with closing(_logged_in(web_server.base_url, "lina")) as other_tabs, ExitStack() as open_streams:
        for _ in range(web_server.settings.event_streams_per_client):
            assert open_streams.enter_context(other_tabs.stream("GET", "/console/stream")).status_code == 200
        yield


def _open_paused_console(page, web_server: WebServer, clock_stopped: bool = False) -> None:
    """lina's team queue, its stream refused (429); with ``clock_stopped`` no timer of the page fires from then on,
    so that only the network can bring it back."""
    log_in(page, web_server.base_url, "lina")
    if clock_stopped:
        page.clock.install()
    page.goto(f"{web_server.base_url}/console?tab=team")
    page.locator("#live-status[data-state='paused']").wait_for()
    if clock_stopped:
        page.clock.pause_at(page.evaluate("Date.now()") + 10)


@pytest.mark.browser
def test_a_console_refused_its_stream_says_so_then_reconnects_and_catches_up(
    web_server: WebServer, browser_page
) -> None:
    page = browser_page
    kefu = bootstrap(web_server.settings)
    try:
        with _stream_slots_taken(web_server):
            _open_paused_console(page, web_server)
            notice = page.locator("#live-status").inner_text()
            assert re.search(
                r"^实时更新已暂停 Live updates paused .*too many live connections.* retrying in \d+ s$", notice
            )
            page.screenshot(path=str(ARTIFACTS_DIR / "console-live-paused.png"), full_page=True)
            ticket_id = open_demo_ticket(kefu, "web:while-paused", "快递三天没动了")
            time.sleep(COMMIT_OVERLAP.total_seconds() + 1)  # longer ago than a stream opened afresh would look back
        # The other tabs closed: the page gets a slot at its next try and resumes from where it was cut off.
        page.locator(f"#queue tr[data-ticket-id='{ticket_id}']").wait_for(timeout=40_000)
        assert page.locator("#live-status").inner_text() == "实时 Live ●"
    finally:
        kefu.dispose()


@pytest.mark.browser
def test_a_paused_console_tries_again_at_once_when_the_network_is_back(web_server: WebServer, browser_page) -> None:
    page = browser_page
    kefu = bootstrap(web_server.settings)
    try:
        with _stream_slots_taken(web_server):
            _open_paused_console(page, web_server, clock_stopped=True)
            ticket_id = open_demo_ticket(kefu, "web:back-online", "退款一直没到账")
        row = page.locator(f"#queue tr[data-ticket-id='{ticket_id}']")
        # Chromium may fire `online` a moment before requests go through: an attempt that fails then waits for the
        # next wake, which the stopped clock leaves to the network alone.
        for _ in range(3):
            page.context.set_offline(True)
            page.context.set_offline(False)
            with suppress(PlaywrightTimeoutError):
                row.wait_for(timeout=5_000)
                break
        row.wait_for(timeout=1_000)
        assert page.locator("#live-status").inner_text() == "实时 Live ●"
    finally:
        kefu.dispose()


@pytest.mark.browser
def test_a_console_whose_session_ended_says_so_and_logging_in_again_brings_it_back(
    web_server: WebServer, browser_page
) -> None:
    page = browser_page
    with _stream_slots_taken(web_server):
        _open_paused_console(page, web_server, clock_stopped=True)
        other_page = page.context.new_page()  # the agent logs out in another tab of the same browser
        other_page.goto(f"{web_server.base_url}/console")
        other_page.click("button.link:has-text('Log out')")
        other_page.wait_for_url("**/login**")
    page.clock.run_for(31_000)  # past the longest wait: the console tries again, and is refused for want of a session
    ended = page.locator("#live-status[data-state='ended']")
    ended.wait_for()
    assert ended.inner_text().startswith("登录已失效，实时更新已暂停 Session ended, live updates paused")
    page.clock.resume()
    page.click("#live-status a:has-text('Log in again')")
    page.fill("input[name=username]", "lina")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console?tab=team")  # back where the agent was
    page.locator("#live-status[data-state='live']").wait_for()
