"""The admin's users page in Debian chromium: add an agent, who must choose a password at first login, then disable."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import ARTIFACTS_DIR, log_in
from tests.support.web import WebServer

pytestmark = pytest.mark.browser


def test_admin_adds_an_agent_who_chooses_a_password_then_is_disabled_and_locked_out(
    web_server: WebServer, browser_page
) -> None:
    page, base_url = browser_page, web_server.base_url
    log_in(page, base_url, "admin")
    page.goto(f"{base_url}/admin/users")
    page.fill("#add-user input[name=username]", "mei")
    page.fill("#add-user input[name=display_name]", "梅 Mei")
    page.select_option("#add-user select[name=role]", "agent")
    page.check("#add-user input[name=teams][value=logistics]")
    page.click("#add-user button[type=submit]")
    password = page.locator("#one-time-password").inner_text().strip()
    assert len(password) >= 16
    row = page.locator("#users tr[data-username='mei']")
    assert "logistics" in row.inner_text() and "must change" in row.inner_text()
    page.screenshot(path=str(ARTIFACTS_DIR / "admin-users-added.png"), full_page=True)

    agent = page.context.browser.new_context(locale="zh-CN").new_page()
    try:
        agent.goto(f"{base_url}/login")
        agent.fill("input[name=username]", "mei")
        agent.fill("input[name=password]", password)
        agent.click("button[type=submit]")
        agent.wait_for_url(re.compile(r".*/account/password.*"))
        assert agent.locator("#forced-change").is_visible()
        agent.goto(f"{base_url}/console")  # nothing else opens until the password is chosen
        agent.wait_for_url(re.compile(r".*/account/password.*"))
        agent.fill("input[name=current_password]", password)
        agent.fill("input[name=new_password]", "mei-chose-this-one")
        agent.fill("input[name=repeat_password]", "mei-chose-this-one")
        agent.click("#change-password button[type=submit]")
        agent.wait_for_url(f"{base_url}/console")
        assert "梅 Mei" in agent.locator(".who").inner_text()

        page.goto(f"{base_url}/admin/users")
        row = page.locator("#users tr[data-username='mei']")
        assert "own" in row.inner_text()
        row.get_by_role("button", name=re.compile("Disable")).click()
        page.wait_for_selector(".notice:has-text('mei')")
        assert page.locator("#users tr[data-username='mei']").get_attribute("data-active") == "false"
        page.screenshot(path=str(ARTIFACTS_DIR / "admin-users-disabled.png"), full_page=True)

        agent.goto(f"{base_url}/console")
        agent.wait_for_url(re.compile(r".*/login.*"))
        agent.fill("input[name=username]", "mei")
        agent.fill("input[name=password]", "mei-chose-this-one")
        agent.click("button[type=submit]")
        assert agent.locator(".error").inner_text().endswith("Wrong username or password")
    finally:
        agent.screenshot(path=str(ARTIFACTS_DIR / "admin-users-agent-final.png"), full_page=True)
        agent.context.close()
