"""Web chat in a real browser: Debian chromium → kefu web app (page and relay) → Rasa's webchat channel → CRM → SSE
back. The browser talks to the web app alone; who is chatting is the app's signed session cookie."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page
from sqlalchemy import select

from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.crm.models import Conversation, Interaction, ModelStatus, Speaker, Ticket
from router.crm.seed import seed_demo
from router.delivery.service import deliver
from router.delivery.telegram import Button
from router.settings import Settings
from router.training.registry import register
from router.triage.training import train_default_model
from router.web.webchat import CHAT_COOKIE, chat_session
from tests.support.browser import ARTIFACTS_DIR
from tests.support.fake_telegram import start_channels_stack
from tests.support.listening import free_port
from tests.support.rasa_stack import PROJECT_ROOT, RasaStack
from tests.support.web import wait_until_healthy

pytestmark = [pytest.mark.rasa, pytest.mark.browser]
REPLY_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class ChatSite:
    """The running pieces a web chat test drives."""

    base_url: str
    rasa: RasaStack
    kefu: Kefu
    secret_key: str

    def session(self, page: Page) -> str:
        """The chat session the page's cookie names (the page itself never sees it)."""
        cookie = next(c["value"] for c in page.context.cookies() if c["name"] == CHAT_COOKIE)
        session = chat_session(self.secret_key, cookie)
        assert session is not None
        return session


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatSite]:
    work_dir = tmp_path_factory.mktemp("webchat")
    database_url = f"sqlite:///{work_dir / 'kefu.db'}"
    settings = Settings(database_url=database_url, var_dir=work_dir / "var")
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_demo(uow.session, settings.data_dir)
        # Filing a complaint needs an active triage model: the shipped default one, trained once and cached.
        register(uow.session, "triage", "test-default", default_triage_model(), "test", {}, ModelStatus.active, None)
        uow.commit()
    rasa = start_channels_stack(database_url, work_dir, "http://127.0.0.1:9/bot")
    port = free_port()
    secret_key = uuid.uuid4().hex
    env = {
        **os.environ,
        "KEFU_DATABASE_URL": database_url,
        "KEFU_RASA_URL": rasa.rasa_url,
        "KEFU_RASA_TOKEN": rasa.rasa_token,
        "KEFU_SECRET_KEY": secret_key,
        "KEFU_WEB_PORT": str(port),
    }
    log_path = work_dir / "web.log"
    with log_path.open("w") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "router.web.app:create_app", "--factory", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base_url, web, log_path)
        yield ChatSite(base_url, rasa, kefu, secret_key)
    finally:
        web.terminate()
        web.wait(timeout=10)
        rasa.stop()
        kefu.dispose()


def default_triage_model() -> Path:
    """The shipped default triage model, trained once per version of its data."""
    triage_data = sorted((PROJECT_ROOT / "data" / "triage").rglob("*"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in triage_data if p.is_file())).hexdigest()[:12]
    model_dir = PROJECT_ROOT / "models" / "test-cache" / f"triage-{digest}"
    if not model_dir.exists():
        train_default_model(model_dir, PROJECT_ROOT / "data")
    return model_dir


def turns(page: Page, speaker: str) -> Locator:
    return page.locator(f"#webchat-log li[data-speaker={speaker}]")


def say(page: Page, text: str) -> None:
    """Type and press Enter, then wait for the bot's answer to this message."""
    bots_before = turns(page, "bot").count()
    page.fill("#webchat-input", text)
    page.press("#webchat-input", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#webchat-log li[data-speaker=bot]').length > n",
        arg=bots_before,
        timeout=REPLY_TIMEOUT_MS,
    )


def shot(page: Page, name: str) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS_DIR / f"webchat-{name}.png"))


def conversation_of(kefu: Kefu, session: str) -> tuple[int, int]:
    """Id and customer id of the browser session's latest conversation, once the event broker has logged it."""
    query = select(Conversation).where(Conversation.sender_id == f"web:{session}").order_by(Conversation.id.desc())
    deadline = time.monotonic() + 60  # the broker writes in the background; CI machines can be slow
    while time.monotonic() < deadline:
        with kefu.uow() as uow:
            conversation = uow.session.execute(query).scalars().first()
            if conversation is not None:
                return conversation.id, conversation.customer_id
        time.sleep(0.2)
    raise AssertionError(f"no CRM conversation for web:{session}")


def wait_until_logged(kefu: Kefu, conversation_id: int, turns_expected: int) -> None:
    """Block until the event broker's background writer has stored the conversation's turns so far."""
    query = select(Interaction.id).where(Interaction.conversation_id == conversation_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with kefu.uow() as uow:
            if len(uow.session.execute(query).all()) >= turns_expected:
                return
        time.sleep(0.2)
    raise AssertionError(f"conversation {conversation_id} has fewer than {turns_expected} logged turns")


def test_customer_chats_in_chinese_and_english_files_a_complaint_reloads_and_gets_an_agent_reply(
    site: ChatSite, browser_page
) -> None:
    page = browser_page
    page.goto(f"{site.base_url}/chat")
    page.wait_for_selector("#webchat[data-state=online]")
    say(page, "你好")
    assert re.search(r"[\u4e00-\u9fff]", turns(page, "bot").last.inner_text())
    say(page, "hello")
    assert re.search(r"[A-Za-z]{3}", turns(page, "bot").last.inner_text())
    say(page, "我要投诉，快递一个星期了还没到，太慢了")
    say(page, "订单号 202311150001")
    shot(page, "1-complaint")
    session = site.session(page)
    conversation_id, customer_id = conversation_of(site.kefu, session)
    with site.kefu.uow() as uow:
        ticket = uow.session.execute(select(Ticket).where(Ticket.customer_id == customer_id)).first()
    assert ticket is not None, "the complaint did not open a ticket"
    shown_before_reload = page.locator("#webchat-log li").all_inner_texts()
    # History after a reload comes from the CRM, which the broker fills in the background: let it catch up first.
    wait_until_logged(site.kefu, conversation_id, turns_expected=8)

    page.reload()
    page.wait_for_selector("#webchat[data-state=online]")
    assert site.session(page) == session
    page.wait_for_function(
        "n => document.querySelectorAll('#webchat-log li').length >= n", arg=8, timeout=REPLY_TIMEOUT_MS
    )
    history = page.locator("#webchat-log li").all_inner_texts()
    assert "你好" in history and "hello" in history
    assert [t for t in history if "投诉" in t]
    assert len(history) >= len(shown_before_reload) - 1  # the CRM log may merge a bot turn split in two
    shot(page, "2-after-reload")

    result = deliver(site.kefu, conversation_id, "您好，我是客服小李，已为您催促快递。<b>不是HTML</b>")
    assert result.ok
    agent = turns(page, "agent").last
    agent.wait_for(timeout=REPLY_TIMEOUT_MS)
    assert "<b>不是HTML</b>" in agent.inner_text()
    assert page.locator("#webchat-log b").count() == 0
    shot(page, "3-agent-reply")


def test_quick_reply_buttons_ime_enter_and_escaping(site: ChatSite, browser_page) -> None:
    page = browser_page
    page.goto(f"{site.base_url}/chat")
    page.wait_for_selector("#webchat[data-state=online]")
    # Enter while an input method is composing must not send.
    page.fill("#webchat-input", "nihao")
    page.dispatch_event("#webchat-input", "keydown", {"key": "Enter", "isComposing": True})
    assert turns(page, "customer").count() == 0
    assert page.input_value("#webchat-input") == "nihao"

    say(page, "<img src=x onerror=\"document.title='pwned'\"> hello")
    assert page.locator("#webchat-log img").count() == 0
    assert page.title() != "pwned"
    assert "<img" in turns(page, "customer").last.inner_text()

    session = site.session(page)
    conversation_id, _ = conversation_of(site.kefu, session)
    deliver(
        site.kefu,
        conversation_id,
        "Was this helpful?",
        [Button("Yes", "/affirm"), Button("No", "/deny")],
    )
    yes = page.get_by_role("button", name="Yes")
    yes.wait_for(timeout=REPLY_TIMEOUT_MS)
    customer_turns = turns(page, "customer").count()
    yes.click()
    page.wait_for_function(
        "n => document.querySelectorAll('#webchat-log li[data-speaker=customer]').length > n", arg=customer_turns
    )
    assert turns(page, "customer").last.inner_text() == "Yes"
    assert yes.is_disabled()
    shot(page, "4-buttons")


def test_connecting_state_and_reconnection(site: ChatSite, browser_page) -> None:
    page = browser_page
    page.route("**/webchat/events*", lambda route: route.abort())
    page.goto(f"{site.base_url}/chat")
    status = page.locator("#webchat-status")
    assert "Connecting" in status.inner_text() or "Reconnecting" in status.inner_text()
    assert status.is_visible()
    shot(page, "5-connecting")
    page.unroute("**/webchat/events*")
    page.wait_for_selector("#webchat[data-state=online]", timeout=30_000)


def test_script_tag_widget_on_another_site(site: ChatSite, browser_page, tmp_path: Path) -> None:
    page = browser_page
    (tmp_path / "shop.html").write_text(
        f'<!doctype html><html><body><h1>Some shop</h1><script src="{site.base_url}/static/webchat-widget.js">'
        "</script></body></html>",
        encoding="utf-8",
    )
    # The shop is another origin (its own port), as on a customer's real site.
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    shop = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{shop.server_address[1]}/shop.html")
        page.click("#kefu-webchat-launcher")
        frame = page.frame_locator("#kefu-webchat-frame")
        frame.locator("#webchat[data-state=online]").wait_for(timeout=30_000)
        frame.locator("#webchat-input").fill("你好")
        frame.locator("#webchat-input").press("Enter")
        reply = frame.locator("#webchat-log li[data-speaker=bot]").first
        reply.wait_for(timeout=REPLY_TIMEOUT_MS)
        assert frame.locator("#webchat-log li[data-speaker=customer]").all_inner_texts() == ["你好"]
        assert re.search(r"[\u4e00-\u9fff]", reply.inner_text()), "the bot answers the greeting in Chinese"
        # The chat runs from kefu's origin inside the shop's page, not as the shop's own script.
        assert page.locator("#kefu-webchat-frame").get_attribute("src").startswith(site.base_url)
        assert page.locator("#webchat-log").count() == 0
        shot(page, "6-widget")
    finally:
        shop.shutdown()
        shop.server_close()


def test_an_agent_reply_is_stored_once_and_shown_once_before_and_after_a_reload(site: ChatSite, browser_page) -> None:
    page = browser_page
    page.goto(f"{site.base_url}/chat")
    page.wait_for_selector("#webchat[data-state=online]")
    say(page, "你好")
    conversation_id, _ = conversation_of(site.kefu, site.session(page))
    reply = "客服小王：您的问题已记录，稍后回复您。"
    assert deliver(site.kefu, conversation_id, reply).ok
    turns(page, "agent").filter(has_text=reply).first.wait_for(timeout=REPLY_TIMEOUT_MS)
    assert [text.splitlines()[-1] for text in turns(page, "agent").all_inner_texts()] == [reply]  # under its label

    page.reload()
    page.wait_for_selector("#webchat[data-state=online]")
    turns(page, "agent").filter(has_text=reply).first.wait_for(timeout=REPLY_TIMEOUT_MS)
    # The history (from the CRM) and the live stream both carry the reply: the page shows it once.
    assert [text.splitlines()[-1] for text in turns(page, "agent").all_inner_texts()] == [reply]
    with site.kefu.uow() as uow:
        stored = uow.session.execute(
            select(Interaction.text).where(
                Interaction.conversation_id == conversation_id, Interaction.speaker == Speaker.agent
            )
        ).all()
    assert [text for (text,) in stored] == [reply]
