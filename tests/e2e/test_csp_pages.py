"""Every page in Debian chromium under the Content-Security-Policy: it works, and the browser reports no violation.

A page that still had an inline script, an ``onchange=`` or a ``style=`` would have it blocked, and chromium says so
on the console ("Refused to execute inline script…"); a ``securitypolicyviolation`` listener reports the rest.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from router.bootstrap import bootstrap
from router.crm.models import Agent, Presence, User
from router.training.jobs import enqueue_retrain
from tests.support.browser import log_in, other_site
from tests.support.crm import make_kefu, open_demo_ticket
from tests.support.web import WebServer, web_app_in_thread

pytestmark = pytest.mark.browser

# Added before any page script runs, by the browser's debugging protocol: the policy does not apply to it.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""
_CSP_MESSAGE = re.compile(r"Content Security Policy|CSP violation", re.I)


class BrowserReport:
    """What the page said on its console and which scripts failed, page by page."""

    def __init__(self, page) -> None:
        self.violations: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(_REPORT_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        self.page = page

    def _console(self, message) -> None:
        if _CSP_MESSAGE.search(message.text):
            self.violations.append(f"{self.page.url}: {message.text}")


def test_every_page_works_under_the_policy_with_no_violation(web_server: WebServer, browser_page) -> None:
    page, base_url = browser_page, web_server.base_url
    report = BrowserReport(page)
    kefu = bootstrap(web_server.settings)
    try:
        ticket_id = open_demo_ticket(kefu, "web:csp-e2e", "快递三天没有更新了")
        with kefu.uow() as uow:
            admin_id = uow.session.scalar(select(User.id).where(User.username == "admin"))
            enqueue_retrain(uow.session, admin_id)  # a queued job: the models page polls it from its script
            uow.commit()

        log_in(page, base_url, "lina")  # the login page, then the console
        page.wait_for_selector("#live-status:has-text('●')")  # console.js opened the event stream
        page.select_option("#presence", "away")  # kefu.js submits the form when the choice changes
        page.wait_for_load_state("load")
        page.wait_for_selector("#presence option[value=away][selected]", state="attached")
        with kefu.reader() as reader:
            presence = reader.session.scalar(select(Agent.presence).join(User).where(User.username == "lina"))
        assert presence is Presence.away
        page.goto(f"{base_url}/console/tickets/{ticket_id}")
        page.wait_for_function("document.querySelector('.sla').textContent.trim().length > 1")
        page.click("button.link:has-text('Log out')")

        log_in(page, base_url, "admin")
        for path in ("/supervisor", "/admin", "/admin/inbox", "/analytics/kpis", "/analytics/csat_drivers"):
            page.goto(f"{base_url}{path}")
            page.wait_for_load_state("load")
        assert page.locator("#chart").evaluate("chart => chart.naturalWidth") > 0  # the inline PNG chart shows
        with page.expect_request(re.compile(r".*/admin/jobs/\d+$")):
            page.goto(f"{base_url}/admin/models")  # admin-models.js polls the queued job

        page.goto(f"{base_url}/chat")
        page.wait_for_selector("#webchat[data-state=online]")  # webchat.js is connected to its event stream
        page.goto(f"{base_url}/chat?embed=1")
        page.wait_for_selector("#webchat[data-state=online]")

        page.goto(f"{base_url}/api/docs")  # Swagger UI itself comes from a CDN this machine cannot reach
        page.wait_for_load_state("load")
        script_errors = [error for error in report.errors if "/api/docs" not in error]
    finally:
        kefu.dispose()
    assert report.violations == []
    assert script_errors == []


def framing_page(kefu_url: str) -> str:
    """A page of another site that puts kefu's chat and console login in frames, as a clickjacker would."""
    return (
        f'<!doctype html><html><body><iframe id="chat" src="{kefu_url}/chat?embed=1"></iframe>'
        f'<iframe id="console" src="{kefu_url}/login"></iframe></body></html>'
    )


def shows_kefu(page, frame_id: str, selector: str) -> bool:
    """Whether the browser rendered kefu's page in the frame, rather than its refusal."""
    frame = page.locator(f"#{frame_id}").element_handle().content_frame()
    return frame is not None and frame.query_selector(selector) is not None


def test_only_a_listed_shop_may_frame_the_chat_and_no_site_the_console(browser_page, tmp_path: Path) -> None:
    page = browser_page
    refusals: list[str] = []
    page.on("console", lambda message: refusals.append(message.text) if "frame-ancestors" in message.text else None)
    (tmp_path / "shop").mkdir()
    (tmp_path / "hostile").mkdir()
    with other_site(tmp_path / "shop") as shop, other_site(tmp_path / "hostile") as hostile:
        kefu = make_kefu(f"sqlite:///{tmp_path / 'kefu.db'}", tmp_path, webchat_embed_origins=shop)
        kefu.dispose()
        with web_app_in_thread(kefu.settings) as kefu_url:
            for site in ("shop", "hostile"):
                (tmp_path / site / "index.html").write_text(framing_page(kefu_url), encoding="utf-8")

            page.goto(f"{shop}/index.html")
            assert shows_kefu(page, "chat", "#webchat")
            assert not shows_kefu(page, "console", "input[name=password]")
            assert len(refusals) == 1

            page.goto(f"{hostile}/index.html")
            assert not shows_kefu(page, "chat", "#webchat")
            assert not shows_kefu(page, "console", "input[name=password]")
            assert len(refusals) == 3, refusals

            page.goto(f"{kefu_url}/chat")  # its own page stays a page of its own
            page.wait_for_selector("#webchat")
