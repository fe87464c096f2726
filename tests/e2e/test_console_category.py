"""Browser test: an agent corrects a ticket's complaint category on the ticket page (Debian chromium, real CRM)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from router.bootstrap import bootstrap
from router.crm.models import Ticket, TrainingExample
from router.training.labels import COMPLAINT_TARGET
from tests.support.browser import ARTIFACTS_DIR, log_in
from tests.support.crm import open_demo_ticket
from tests.support.web import WebServer

pytestmark = pytest.mark.browser


def test_agent_picks_a_new_category_and_sees_it_on_the_ticket_page(web_server: WebServer, browser_page) -> None:
    page = browser_page
    kefu = bootstrap(web_server.settings)
    try:
        ticket_id = open_demo_ticket(kefu, "web:e2e-recategorise", "快递到了，但是杯子碎了，要退款")
        log_in(page, web_server.base_url, "lina")
        page.goto(f"{web_server.base_url}/console/tickets/{ticket_id}")
        assert page.locator("#ticket-category").inner_text() == "delivery"
        assert page.locator("#category-corrected").count() == 0  # the classifier's guess, with its confidence
        assert page.locator("#correct-category").input_value() == "delivery"

        page.select_option("#correct-category", label="退货退款 Returns and refunds")
        page.click("#correct-category-submit")
        page.wait_for_selector(".notice:has-text('Category corrected to refund_return')")
        assert page.locator("#ticket-category").inner_text() == "refund_return"
        assert page.locator("#category-corrected").inner_text() == "(已改正 corrected)"
        assert page.locator("#correct-category").input_value() == "refund_return"
        assert page.get_by_text("category_corrected delivery → refund_return · 李娜 Li Na").is_visible()
        page.screenshot(path=str(ARTIFACTS_DIR / "console-category-corrected.png"), full_page=True)

        with kefu.uow() as uow:
            assert uow.session.get(Ticket, ticket_id).category == "refund_return"
            labels = uow.session.scalars(
                select(TrainingExample.label).where(
                    TrainingExample.ticket_id == ticket_id, TrainingExample.target == COMPLAINT_TARGET
                )
            ).all()
            assert labels == ["refund_return"]
    finally:
        kefu.dispose()
