"""A supervisor browses the analytics pages in chromium, changes the period and exports a table and a chart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.analytics.demo_data import generate_history
from router.bootstrap import bootstrap
from tests.support.browser import ARTIFACTS_DIR, log_in
from tests.support.web import WebServer

pytestmark = pytest.mark.browser


def _fill_history(server: WebServer) -> None:
    kefu = bootstrap(server.settings)
    with kefu.uow() as uow:
        generate_history(uow.session, kefu.passwords, server.settings.data_dir, customers=150, days=60, seed=9)
        uow.commit()
    kefu.dispose()


def _chart_is_drawn(page) -> bool:
    return page.eval_on_selector("#chart", "img => img.complete && img.naturalWidth > 300 && img.naturalHeight > 150")


def test_supervisor_browses_every_analysis_and_exports_csv_and_png(web_server: WebServer, browser_page) -> None:
    _fill_history(web_server)
    page = browser_page
    log_in(page, web_server.base_url, "supervisor")
    page.goto(f"{web_server.base_url}/analytics")
    page.wait_for_url(re.compile(r".*/analytics/kpis.*"))
    assert _chart_is_drawn(page)
    assert page.locator("#main-table tbody tr").count() >= 5  # bot + five teams
    for label, name in [
        ("Topics", "topics"),
        ("CSAT drivers", "csat_drivers"),
        ("Segments", "segments"),
        ("Rules", "rules"),
        ("Staffing", "staffing"),
    ]:
        page.click(f"#analytics-nav a:has-text('{label}')")
        page.wait_for_url(re.compile(rf".*/analytics/{name}\?days=30"))
        assert _chart_is_drawn(page), name
        assert page.locator("#analysis h1").inner_text()
        page.screenshot(path=str(ARTIFACTS_DIR / f"analytics-{name}.png"), full_page=True)
    page.click("#analytics-nav a:has-text('Topics')")
    page.fill("input[name=days]", "60")
    page.click("#analytics-nav button[type=submit]")
    page.wait_for_url(re.compile(r".*/analytics/topics\?days=60"))
    assert "快递" in page.locator("#table-1").inner_text()

    with page.expect_download() as csv_download:
        page.click("#export-csv")
    csv_text = Path(csv_download.value.path()).read_text(encoding="utf-8-sig")
    assert csv_text.splitlines()[0] == "topic,words,share,previous_share"
    assert len(csv_text.splitlines()) > 2
    with page.expect_download() as png_download:
        page.click("#export-png")
    assert csv_download.value.suggested_filename.endswith(".csv")
    assert Path(png_download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_agent_is_turned_away_from_analytics(web_server: WebServer, browser_page) -> None:
    page = browser_page
    log_in(page, web_server.base_url, "lina")
    response = page.goto(f"{web_server.base_url}/analytics/kpis")
    assert response.status == 403
    assert "supervisor" in page.content()
