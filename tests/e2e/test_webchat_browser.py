"""Web chat in a real browser: Debian chromium → kefu web app (page and relay) → Rasa's webchat channel → CRM → SSE
back. The browser talks to the web app alone; who is chatting is the app's signed session cookie, or inside the
script-tag widget on another site, where third-party cookies may be blocked, the app's signed session token."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Frame, Locator, Page, sync_playwright
from sqlalchemy import select

from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.crm.models import Conversation, Interaction, ModelStatus, Speaker, Ticket
from router.crm.seed import seed_demo
from router.delivery.service import deliver
from router.delivery.telegram import Button
from router.settings import Settings
from router.training.registry import register
from router.web.webchat import CHAT_COOKIE, chat_session, token_session
from tests.support.browser import ARTIFACTS_DIR, CHROMIUM_ARGS, CHROMIUM_PATH, other_site
from tests.support.crm import seeded_kefu
from tests.support.fake_telegram import start_channels_stack
from tests.support.listening import free_port
from tests.support.rasa_stack import RasaStack
from tests.support.triage import default_triage_model
from tests.support.web import running_web_app, wait_until_healthy

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
        seed_demo(uow.session, kefu.passwords, settings.data_dir)
        # Filing a complaint needs an active triage model: the shipped default one, trained once and cached.
        triage = default_triage_model(work_dir / "triage", settings.shared_data_dir)
        register(uow.session, "triage", "test-default", triage, "test", {}, ModelStatus.active, None)
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


def turns(page: Page | Frame, speaker: str) -> Locator:
    return page.locator(f"#webchat-log li[data-speaker={speaker}]")


def say(page: Page | Frame, text: str) -> None:
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


@dataclass(frozen=True)
class CookiePolicy:
    """How a browser treats a frame from another site: its cookies and its local storage."""

    blocks_third_party_cookies: bool
    frame_has_storage: bool
    extra_args: tuple[str, ...] = ()


BROWSERS = {
    # Chrome's "Block third-party cookies" setting: the frame gets no cookies and no local storage either.
    "chrome-blocking-third-party-cookies": CookiePolicy(blocks_third_party_cookies=True, frame_has_storage=False),
    # As Safari and Firefox's strict mode: no third-party cookies, but the frame has storage of its own on each site.
    "partitioned-storage": CookiePolicy(
        blocks_third_party_cookies=True,
        frame_has_storage=True,
        extra_args=("--disable-features=TrackingProtection3pcd",),
    ),
    # Third-party cookies allowed: the probe below sees its cookie set, so where it sees none, the browser blocked it.
    "allowing-third-party-cookies": CookiePolicy(blocks_third_party_cookies=False, frame_has_storage=True),
}
# A cookie that a third-party frame may set unless the browser blocks third-party cookies (SameSite=None needs
# Secure, which Chrome grants http://localhost).
THIRD_PARTY_COOKIE_PROBE = """name => {
    document.cookie = name + "=1; SameSite=None; Secure; Path=/";
    return document.cookie.includes(name + "=1");
}"""
TOKEN_KEY = "kefu-webchat-token"


@contextmanager
def chromium(profile_dir: Path, policy: CookiePolicy) -> Iterator[BrowserContext]:
    """Headless Debian chromium on a profile whose cookie setting (chrome://settings/cookies) is ``policy``'s."""
    if not Path(CHROMIUM_PATH).exists():
        pytest.skip(f"no chromium at {CHROMIUM_PATH}")
    (profile_dir / "Default").mkdir(parents=True)
    preferences = {"profile": {"cookie_controls_mode": 1 if policy.blocks_third_party_cookies else 0}}
    (profile_dir / "Default" / "Preferences").write_text(json.dumps(preferences), encoding="utf-8")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM_PATH,
            args=[*CHROMIUM_ARGS, *policy.extra_args],
            headless=True,
            locale="zh-CN",
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@contextmanager
def shop_site(directory: Path, kefu_url: str) -> Iterator[str]:
    """A shop's page with the widget's script tag, served on its own port; yields the page's URL."""
    (directory / "shop.html").write_text(
        f'<!doctype html><html><body><h1>Some shop</h1><script src="{kefu_url}/static/webchat-widget.js">'
        "</script></body></html>",
        encoding="utf-8",
    )
    with other_site(directory) as shop_origin:
        yield f"{shop_origin}/shop.html"


def open_widget(page: Page) -> Frame:
    """Click the shop page's chat button; the chat frame once it is online."""
    page.click("#kefu-webchat-launcher")
    frame = page.locator("#kefu-webchat-frame").element_handle().content_frame()
    assert frame is not None
    frame.wait_for_selector("#webchat[data-state=online]", timeout=30_000)
    return frame


@pytest.mark.parametrize("browser_kind", BROWSERS)
def test_the_widget_on_another_site_chats_and_remembers_without_third_party_cookies(
    site: ChatSite, tmp_path: Path, browser_kind: str
) -> None:
    policy = BROWSERS[browser_kind]
    # The shop is http://127.0.0.1:PORT, kefu http://localhost:PORT: two sites, so kefu's frame there is third-party.
    kefu_url = site.base_url.replace("127.0.0.1", "localhost")
    with shop_site(tmp_path, kefu_url) as shop_url, chromium(tmp_path / "profile", policy) as browser:
        page = browser.new_page()
        page.goto(shop_url)
        frame = open_widget(page)
        assert frame.url.startswith(f"{kefu_url}/chat")
        assert frame.evaluate(THIRD_PARTY_COOKIE_PROBE, "kefu-probe-frame") is not policy.blocks_third_party_cookies
        say(frame, "你好")
        assert re.search(r"[\u4e00-\u9fff]", turns(frame, "bot").last.inner_text())
        shot(page, f"6-widget-{browser_kind}")

        # The token lives in the frame's own storage where the browser gives it one, else in the shop's.
        shop_token = page.evaluate("key => localStorage.getItem(key)", TOKEN_KEY)
        if policy.frame_has_storage:
            assert shop_token is None
            token = frame.evaluate("key => localStorage.getItem(key)", TOKEN_KEY)
        else:
            assert frame.evaluate("() => { try { return !!localStorage; } catch (e) { return false; } }") is False
            assert shop_token, "the widget kept no token on the shop's page for a frame without storage"
            token = shop_token
        session = token_session(site.secret_key, token)
        conversation_id, _ = conversation_of(site.kefu, session)
        wait_until_logged(site.kefu, conversation_id, turns_expected=2)

        page.reload()
        frame = open_widget(page)
        frame.wait_for_function("() => document.querySelectorAll('#webchat-log li[data-speaker=bot]').length >= 1")
        assert "你好" in turns(frame, "customer").all_inner_texts()
        say(frame, "hello")
        assert conversation_of(site.kefu, session)[0] == conversation_id
        shot(page, f"7-widget-after-reload-{browser_kind}")

        if policy.blocks_third_party_cookies:
            assert CHAT_COOKIE not in {cookie["name"] for cookie in browser.cookies()}
        # The same cookie, first-party on kefu's own page, is kept: the frame's was refused for being third-party.
        own_page = browser.new_page()
        own_page.goto(f"{kefu_url}/chat")
        assert own_page.evaluate(THIRD_PARTY_COOKIE_PROBE, "kefu-probe-first-party") is True


def test_a_refused_event_stream_says_why_and_retries_after_retry_after(browser_page: Page, tmp_path: Path) -> None:
    with (
        seeded_kefu(f"sqlite:///{tmp_path / 'kefu.db'}", tmp_path) as kefu,
        running_web_app(
            kefu.settings, tmp_path / "uvicorn.log", extra_env={"KEFU_EVENT_STREAMS_PER_CLIENT": "1"}
        ) as base_url,
    ):
        first_tab = browser_page
        first_tab.goto(f"{base_url}/chat")
        first_tab.wait_for_selector("#webchat[data-state=online]")

        second_tab = first_tab.context.new_page()  # the same customer (cookie), over the one stream allowed
        requested: list[str] = []
        second_tab.on("request", lambda request: requested.append(request.url))

        def streams_opened() -> int:
            return sum("/webchat/events" in url for url in requested)

        second_tab.clock.install()
        second_tab.goto(f"{base_url}/chat")
        second_tab.wait_for_selector("#webchat[data-state=busy]")
        status = second_tab.locator("#webchat-status")
        assert status.is_visible()
        shown = status.inner_text()
        # Which limit refused it, in both languages the page speaks, and when the page tries again.
        assert "实时连接过多" in shown and "too many live connections" in shown and "秒后重试" in shown, shown
        retry_after_s = int(re.search(r"retrying in (\d+) s", shown).group(1))
        assert 60 <= retry_after_s <= 180, shown  # the server's Retry-After, not a guess of the page's
        shot(second_tab, "8-stream-refused")

        first_tab.goto("about:blank")  # the first tab's stream ends and frees its slot
        second_tab.wait_for_timeout(2_000)
        assert streams_opened() == 1, "the page retried before Retry-After"
        assert second_tab.locator("#webchat").get_attribute("data-state") == "busy"
        second_tab.clock.fast_forward(retry_after_s * 1000)
        second_tab.wait_for_selector("#webchat[data-state=online]")
        assert streams_opened() == 2


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
