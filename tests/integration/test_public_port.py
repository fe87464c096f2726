"""One public port: each attack on the internal servers, performed against the running stack, fails.

Rasa (all channels, REST switched off as in production) and the action server run as ``kefu run`` starts them, and
the web app listens on every interface, as the one public process does in a deployment.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from itsdangerous import URLSafeSerializer

from router.errors import Conflict
from router.settings import Settings
from router.training.registry import reload_rasa
from router.web.webchat import CHAT_COOKIE, chat_session
from tests.support.crm import seeded_sqlite_kefu
from tests.support.fake_telegram import SECRET, TOKEN, fake_telegram_server, start_channels_stack, text_update
from tests.support.listening import descendants, is_loopback, listening, owner_of
from tests.support.rasa_stack import RasaStack
from tests.support.web import running_web_app

pytestmark = pytest.mark.rasa


@dataclass(frozen=True)
class Site:
    """The running stack and the web app in front of it."""

    rasa: RasaStack
    web_url: str
    settings: Settings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work_dir = tmp_path_factory.mktemp("public-port")
    kefu = seeded_sqlite_kefu(work_dir)
    kefu.dispose()
    database_url = kefu.settings.database_url
    with fake_telegram_server() as fake:
        rasa = start_channels_stack(database_url, work_dir, fake.base_url, env={"KEFU_REST_CHANNEL": "false"})
        settings = Settings(
            database_url=database_url,
            var_dir=work_dir / "var",
            secret_key=uuid.uuid4().hex,
            rasa_url=rasa.rasa_url,
            rasa_token=rasa.rasa_token,
            telegram_token=TOKEN,
            telegram_secret_token=SECRET,
            telegram_api_url=fake.base_url,
        )
        try:
            with running_web_app(settings, work_dir / "web.log", host="0.0.0.0") as web_url:
                yield Site(rasa, web_url, settings)
        finally:
            rasa.stop()


def user_texts(site: Site, sender_id: str) -> list[str]:
    """What the tracker says ``sender_id`` typed (read with the token)."""
    return [event["text"] for event in site.rasa.tracker(sender_id)["events"] if event["event"] == "user"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/model"),
        ("GET", "/conversations/telegram:501/tracker"),
        ("POST", "/conversations/telegram:501/tracker/events"),
        ("POST", "/conversations/telegram:501/trigger_intent"),
        ("POST", "/model/parse"),
        ("GET", "/status"),
    ],
)
def test_rasa_api_refuses_callers_without_the_token(site: Site, method: str, path: str) -> None:
    body = {"model_file": str(site.rasa.model_path), "name": "greet", "event": "pause", "text": "hi"}
    for params in ({}, {"token": "guessed"}):
        answer = httpx.request(method, f"{site.rasa.rasa_url}{path}", params=params, json=body, timeout=60)
        assert answer.status_code == 401, (params, answer.text[:300])


def test_rasa_api_answers_with_the_token(site: Site) -> None:
    assert site.rasa.client.get(f"{site.rasa.rasa_url}/conversations/telegram:501/tracker").status_code == 200
    # Promoting a model reloads Rasa with the token; without it Rasa refuses, and the promotion says so.
    assert reload_rasa(site.rasa.rasa_url, site.rasa.model_path, site.rasa.rasa_token)[0]
    with pytest.raises(Conflict, match="401"):
        reload_rasa(site.rasa.rasa_url, site.rasa.model_path)


def _action_call(sender_id: str) -> dict:
    """A hand-made call of the status action for someone else's conversation, as an attacker would send it."""
    tracker = {
        "sender_id": sender_id,
        "slots": {},
        "latest_message": {"text": "status", "intent": {"name": "check_status"}, "entities": []},
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": None,
    }
    return {"next_action": "action_check_status", "sender_id": sender_id, "tracker": tracker, "domain": {}}


def test_action_server_refuses_callers_without_the_token(site: Site) -> None:
    call = _action_call("telegram:501")
    for params in ({}, {"token": "guessed"}):
        answer = httpx.post(site.rasa.action_url, params=params, json=call, timeout=60)
        assert answer.status_code == 401, answer.text[:300]
        assert "responses" not in answer.json()
    assert httpx.get(site.rasa.action_url.removesuffix("/webhook") + "/actions").status_code == 401
    assert httpx.get(site.rasa.action_url.removesuffix("/webhook") + "/health").status_code == 200
    # Rasa's own calls carry the token: the same request with it runs the action.
    answer = httpx.post(site.rasa.action_url, params={"token": site.rasa.action_token}, json=call, timeout=60)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["responses"][0]["response"] == "utter_no_ticket"


def test_spoofed_sender_on_the_disabled_rest_channel_is_refused(site: Site) -> None:
    victim = f"telegram:{uuid.uuid4().int % 10**9}"
    for params in ({}, {"token": site.rasa.rasa_token}):
        answer = httpx.post(
            f"{site.rasa.rasa_url}/webhooks/rest/webhook",
            params=params,
            json={"sender": victim, "message": "我的订单到哪了"},
            timeout=60,
        )
        assert answer.status_code == 404, answer.text[:300]
    assert user_texts(site, victim) == []


def test_rasa_channels_refuse_callers_other_than_the_web_app(site: Site) -> None:
    victim = str(uuid.uuid4())
    webchat = httpx.post(
        f"{site.rasa.rasa_url}/webhooks/webchat/webhook",
        params={"token": "guessed"},
        json={"session": victim, "message": "hello"},
        timeout=60,
    )
    assert webchat.status_code == 401
    assert user_texts(site, f"web:{victim}") == []
    # The Telegram secret alone no longer reaches Rasa's channel: Rasa's token is wanted too.
    telegram = httpx.post(
        f"{site.rasa.rasa_url}/webhooks/telegram/webhook",
        json=text_update(uuid.uuid4().int % 10**8, 4242, "你好"),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        timeout=60,
    )
    assert telegram.status_code == 403
    assert user_texts(site, "telegram:4242") == []


def _chat_client(site: Site) -> tuple[httpx.Client, str]:
    """A browser that opened the chat page: its client (with the cookie) and the session the cookie names."""
    client = httpx.Client(base_url=site.web_url, timeout=120)
    assert client.get("/chat").status_code == 200
    session = chat_session(site.settings.secret_key, client.cookies[CHAT_COOKIE])
    assert session is not None
    return client, session


def test_web_chat_speaks_only_as_the_cookies_customer(site: Site) -> None:
    victim_client, victim = _chat_client(site)
    attacker, own = _chat_client(site)
    try:
        forged = {"message": "我的订单到哪了", "session": victim, "sender": f"web:{victim}", "sender_id": victim}
        answer = attacker.post("/webchat/messages", json=forged)
        assert answer.status_code == 200 and answer.json()["messages"], answer.text[:300]
        assert user_texts(site, f"web:{victim}") == []
        assert user_texts(site, f"web:{own}") == ["我的订单到哪了"]
        # Nor can the attacker read the victim's history or stream by naming the session.
        assert victim_client.post("/webchat/messages", json={"message": "hello"}).status_code == 200
        history = attacker.get("/webchat/history", params={"session": victim}).json()["turns"]
        assert "hello" not in [turn["text"] for turn in history]
    finally:
        victim_client.close()
        attacker.close()


def test_web_chat_refuses_a_missing_or_forged_cookie_and_cross_site_posts(site: Site) -> None:
    victim = str(uuid.uuid4())
    forged_cookie = URLSafeSerializer("kefu-dev-secret-change-me", salt="kefu-webchat-session").dumps(victim)
    for cookies in ({}, {CHAT_COOKIE: forged_cookie}, {CHAT_COOKIE: victim}):
        with httpx.Client(base_url=site.web_url, cookies=cookies, timeout=60) as client:
            assert client.post("/webchat/messages", json={"message": "hello", "session": victim}).status_code == 401
            assert client.get("/webchat/history").status_code == 401
            assert client.get("/webchat/events").status_code == 401
    assert user_texts(site, f"web:{victim}") == []
    # A form on another site can only send "simple" content types, which carry no message here.
    client, own = _chat_client(site)
    try:
        plain = {"Content-Type": "text/plain"}
        assert client.post("/webchat/messages", content=b'{"message": "hello"}', headers=plain).status_code == 415
    finally:
        client.close()
    assert user_texts(site, f"web:{own}") == []


def test_telegram_reaches_rasa_only_through_the_web_app_with_the_secret(site: Site) -> None:
    chat = uuid.uuid4().int % 10**8
    update = text_update(uuid.uuid4().int % 10**8, chat, "你好")
    webhook = f"{site.web_url}/webhooks/telegram/webhook"
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guessed"}):
        assert httpx.post(webhook, json=update, headers=headers, timeout=60).status_code == 403
    assert user_texts(site, f"telegram:{chat}") == []
    answer = httpx.post(webhook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}, timeout=120)
    assert answer.status_code == 200 and answer.json()["status"] == "ok", answer.text[:300]
    assert user_texts(site, f"telegram:{chat}") == ["你好"]


def test_only_the_web_app_listens_beyond_loopback(site: Site) -> None:
    web_port = int(site.web_url.rsplit(":", 1)[1])
    pids = {owner_of(web_port)} | {pid for process in site.rasa.processes for pid in descendants(process.pid)}
    sockets = listening(pids)
    rasa_port, action_port = (httpx.URL(url).port for url in (site.rasa.rasa_url, site.rasa.action_url))
    assert {port for _, port in sockets} == {web_port, rasa_port, action_port}, sockets
    assert {(address, port) for address, port in sockets if not is_loopback(address)} == {("0.0.0.0", web_port)}


def test_no_token_shows_on_a_command_line(site: Site) -> None:
    for process in site.rasa.processes:
        command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert site.rasa.rasa_token.encode() not in command_line
        assert site.rasa.action_token.encode() not in command_line
