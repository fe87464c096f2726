"""Browser-test fixtures: the kefu web app under uvicorn on a free port, and a Playwright page on Debian chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.bootstrap import bootstrap
from router.crm import migrate
from router.settings import Settings
from tests.support.browser import ARTIFACTS_DIR, CHROMIUM_ARGS, CHROMIUM_PATH
from tests.support.crm import seed_demo_with_chosen_passwords
from tests.support.markers import require_marker
from tests.support.web import WebServer, web_app_in_thread


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[WebServer]:
    """uvicorn serving ``create_app`` on a free port over a fresh migrated, demo-seeded SQLite CRM; stopped after."""
    database_url = f"sqlite:///{tmp_path / 'kefu.db'}"
    settings = Settings(database_url=database_url, var_dir=tmp_path / "var")
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, settings.data_dir)
        uow.commit()
    kefu.dispose()
    with web_app_in_thread(settings) as base_url:
        yield WebServer(base_url=base_url, database_url=database_url, settings=settings)


@pytest.fixture
def browser_page(request: pytest.FixtureRequest) -> Iterator:
    """A fresh Playwright page in headless Debian chromium; a screenshot is saved under test-artifacts/ at the end."""
    require_marker("browser", "starts chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"no chromium at {CHROMIUM_PATH}")
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            page.screenshot(path=str(ARTIFACTS_DIR / f"{name}-final.png"), full_page=True)
            context.close()
            browser.close()
