"""An admin reviews misunderstood turns, labels them with a new intent, and retrains from the browser."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from router.bootstrap import bootstrap
from router.crm import migrate
from router.crm.interactions import Turn, record_turns
from router.crm.models import ModelStatus, ModelVersion, Speaker, TrainingExample
from router.settings import PROJECT_ROOT, Settings
from tests.support.browser import log_in
from tests.support.crm import seed_demo_with_chosen_passwords
from tests.support.listening import free_port
from tests.support.web import WebServer, wait_until_healthy

pytestmark = [pytest.mark.browser, pytest.mark.rasa, pytest.mark.timeout(1800)]

QUESTIONS = [
    "how many loyalty points do i have",
    "how do i redeem my loyalty points",
    "do my loyalty points expire",
    "can i use loyalty points to pay",
    "check my loyalty points",
    "我的积分有多少",
    "积分怎么兑换",
    "积分什么时候过期",
]
RETRAIN_TIMEOUT_MS = 600_000


@pytest.fixture
def admin_server(tmp_path: Path) -> Iterator[WebServer]:
    """The web app over a seeded CRM holding misunderstood turns, with its own data copy and models folder."""
    data_dir = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data", data_dir, ignore=shutil.ignore_patterns("reviewed"))
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'kefu.db'}",
        var_dir=tmp_path / "var",
        data_dir=data_dir,
        models_dir=tmp_path / "models",
        rasa_url=f"http://127.0.0.1:{free_port()}",
        secret_key="e2e-admin",
    )
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, data_dir)
        for index, text in enumerate(QUESTIONS):
            sender = f"web:{uuid.uuid4()}"
            record_turns(
                uow.session,
                [
                    Turn(f"c{index}", sender, Speaker.customer, text, intent="nlu_fallback", confidence=0.2),
                    Turn(f"a{index}", sender, Speaker.agent, "Let me check that for you."),
                ],
            )
        uow.commit()
    kefu.dispose()
    port = free_port()
    env = {
        **os.environ,
        "KEFU_DATABASE_URL": settings.database_url,
        "KEFU_VAR_DIR": str(settings.var_dir),
        "KEFU_DATA_DIR": str(data_dir),
        "KEFU_MODELS_DIR": str(settings.models_dir),
        "KEFU_RASA_URL": settings.rasa_url,
        "KEFU_SECRET_KEY": settings.secret_key,
        "RASA_TELEMETRY_ENABLED": "false",
    }
    log_path = tmp_path / "uvicorn.log"
    command = [sys.executable, "-m", "uvicorn", "router.web.app:create_app", "--factory", "--port", str(port)]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, server, log_path)
        yield WebServer(base_url=base_url, database_url=settings.database_url, settings=settings)
    finally:
        # The retrain runs rasa subprocesses in the server's session: stop them with it.
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_agents_cannot_open_the_admin_pages(admin_server: WebServer, browser_page) -> None:
    log_in(browser_page, admin_server.base_url, "lina")
    response = browser_page.goto(f"{admin_server.base_url}/admin/inbox")
    assert response is not None and response.status == 403


def test_admin_labels_a_group_with_a_new_intent_and_retrains(admin_server: WebServer, browser_page) -> None:
    page, base_url = browser_page, admin_server.base_url
    log_in(page, base_url, "admin")
    page.goto(f"{base_url}/admin/inbox")
    groups = page.locator(".inbox-group")
    assert groups.count() < len(QUESTIONS), "similar questions share a group"

    first = groups.first
    first.locator("summary").click()
    first.locator("input[name=new_intent]").fill("ask_loyalty_points")
    first.locator("textarea[name=response_en]").fill("One point per yuan; redeem them at checkout.")
    first.locator("textarea[name=response_zh]").fill("每消费一元积一分，结账时可抵扣。")
    first.locator("button[type=submit]").click()
    page.wait_for_url("**/admin/inbox?notice=*")
    assert "ask_loyalty_points" in page.locator(".notice").inner_text()
    while page.locator(".inbox-group").count():
        group = page.locator(".inbox-group").first
        group.locator("select[name=intent]").select_option("ask_loyalty_points")
        group.locator("button[type=submit]").click()
        page.wait_for_url("**/admin/inbox?notice=*")

    page.goto(f"{base_url}/admin/models")
    page.click("#retrain")
    page.wait_for_selector("#job-progress")
    page.wait_for_selector("#job[data-status=succeeded], #job[data-status=failed]", timeout=RETRAIN_TIMEOUT_MS)
    assert page.locator("#job").get_attribute("data-status") == "succeeded", page.locator("#job-log").inner_text()
    assert page.locator("#job-progress").get_attribute("value") == "1.0"
    assert page.locator("#registry tr[data-kind=nlu][data-status=active]").count() == 1
    assert page.locator("#gate-report").get_attribute("data-passed") == "true"
    intents, complaints = page.locator("#gate-nlu").inner_text(), page.locator("#gate-triage").inner_text()
    assert "Intents" in intents and "Candidate" in intents and "Held-back examples" in intents
    assert "Complaint categories" in complaints and "Candidate" in complaints and "Macro-F1" in complaints
    assert page.locator("#registry tr[data-kind=triage][data-status=active]").count() == 1

    kefu = bootstrap(admin_server.settings)
    try:
        with kefu.uow() as uow:
            labelled = uow.session.scalar(select(func.count(TrainingExample.id)))
            active = uow.session.execute(
                select(ModelVersion).where(ModelVersion.status == ModelStatus.active, ModelVersion.kind == "nlu")
            ).scalar_one()
            assert Path(active.path).exists()
    finally:
        kefu.dispose()
    assert labelled == len(QUESTIONS)
