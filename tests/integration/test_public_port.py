"""One public port: each attack on the internal servers, performed against the running stack, fails.

Rasa (all channels, REST switched off as in production) and the action server run as ``kefu run`` starts them, and
the web app listens on every interface, as the one public process does in a deployment.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from router.errors import Conflict
from router.settings import Settings
from router.training.registry import reload_rasa
from router.web.webchat import (
    CHAT_COOKIE,
    CHAT_TOKEN_HEADER,
    CHAT_TOKEN_MAX_AGE_S,
    chat_cookie,
    chat_session,
    token_session,
)
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
    web_log: Path


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
        web_log = work_dir / "web.log"
        try:
            # With uvicorn's access log, as `kefu web` writes it: no chat token may show up there.
            with running_web_app(settings, web_log, host="0.0.0.0", log_level="info") as web_url:
                yield Site(rasa, web_url, settings, web_log)
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


def _widget_frame(site: Site) -> tuple[httpx.Client, str, str]:
    """The script-tag widget's frame as a browser blocking third-party cookies runs it: a client without cookies,
    the session token it was given and the session that token names."""
    client = httpx.Client(base_url=site.web_url, timeout=120)
    assert client.get("/chat", params={"embed": 1}).status_code == 200
    assert not client.cookies, "the widget's frame must not depend on a (third-party) cookie"
    answer = client.post("/webchat/sessions")
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    return client, token, token_session(site.settings.secret_key, token)


def history_texts(client: httpx.Client, expected: str, **request: Any) -> list[str]:
    """The texts of the chat's history once ``expected`` is among them (the event broker logs turns in the
    background)."""
    deadline = time.monotonic() + 60
    while True:
        answer = client.get("/webchat/history", **request)
        assert answer.status_code == 200, answer.text[:300]
        texts = [turn["text"] for turn in answer.json()["turns"]]
        if expected in texts or time.monotonic() > deadline:
            return texts
        time.sleep(0.2)


def test_the_widget_chats_on_its_session_token_alone_and_keeps_it(site: Site) -> None:
    frame, token, session = _widget_frame(site)
    try:
        frame.headers[CHAT_TOKEN_HEADER] = token
        answer = frame.post("/webchat/messages", json={"message": "你好"})
        assert answer.status_code == 200 and answer.json()["messages"], answer.text[:300]
        assert user_texts(site, f"web:{session}") == ["你好"]
        assert "你好" in history_texts(frame, "你好")
        with frame.stream("GET", "/webchat/events") as stream:
            assert stream.status_code == 200
        # Reopening the chat renews the token for the same customer, as the page's visit renews the cookie.
        renewed = frame.post("/webchat/sessions").json()["token"]
        assert token_session(site.settings.secret_key, renewed) == session
    finally:
        frame.close()


def _backdated_token(secret_key: str, session: str) -> str:
    """A token signed with the real key a day longer ago than tokens live: what a customer's old browser holds."""

    class Backdated(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - CHAT_TOKEN_MAX_AGE_S - 24 * 3600

    return URLSafeTimedSerializer(secret_key, salt="kefu-webchat-token", signer=Backdated).dumps(session)


def _tampered(token: str, session: str) -> str:
    """``token`` with its payload swapped for ``session``'s, signature and timestamp kept."""
    _, stamp, signature = token.split(".")
    payload = URLSafeTimedSerializer("any", salt="any").dump_payload(session).decode()
    return f"{payload}.{stamp}.{signature}"


def test_forged_tampered_expired_and_borrowed_tokens_are_refused(site: Site) -> None:
    victim_frame, victim_token, victim = _widget_frame(site)
    victim_frame.close()
    attacker_frame, attacker_token, _ = _widget_frame(site)
    secret_key = site.settings.secret_key
    forged = {
        f"signed with {key!r}": URLSafeTimedSerializer(key, salt="kefu-webchat-token").dumps(victim)
        for key in ("", "kefu-dev-secret-change-me", uuid.uuid4().hex)
    }
    attacks = {
        **forged,
        "payload swapped for the victim's": _tampered(attacker_token, victim),
        "signature changed": victim_token[:-2] + ("AA" if not victim_token.endswith("AA") else "BB"),
        "the victim's cookie value": chat_cookie(secret_key, victim),
        "the bare session id": victim,
        "empty": "",
        "expired": _backdated_token(secret_key, victim),
    }
    cookie_client, _ = _chat_client(site)  # a valid cookie does not stand in for a refused token
    message = {"message": "我的订单到哪了", "session": victim}
    try:
        for attack, token in attacks.items():
            for client in (attacker_frame, cookie_client):
                headers = {CHAT_TOKEN_HEADER: token}
                refusals = [
                    client.post("/webchat/messages", json=message, headers=headers),
                    client.get("/webchat/history", headers=headers),
                    client.get("/webchat/events", headers=headers),
                    client.post("/webchat/sessions", headers=headers),
                ]
                for refusal in refusals:
                    assert refusal.status_code == 401, (attack, refusal.request.url, refusal.text[:300])
                    reason = refusal.json()["error"]
                    assert ("expired" in reason) if attack == "expired" else ("not valid" in reason), (attack, reason)
    finally:
        attacker_frame.close()
        cookie_client.close()
    assert user_texts(site, f"web:{victim}") == []


def test_a_token_speaks_only_as_its_own_customer_whatever_else_the_request_claims(site: Site) -> None:
    victim_client, victim = _chat_client(site)  # the victim's browser, holding the cookie
    frame, token, own = _widget_frame(site)
    try:
        # The attacker holds a token of their own and sends the victim's cookie and session id beside it.
        claims = {"session": victim, "sender": f"web:{victim}", "sender_id": victim}
        headers = {
            CHAT_TOKEN_HEADER: token,
            "Cookie": f"{CHAT_COOKIE}={victim_client.cookies[CHAT_COOKIE]}",
            "X-Kefu-Session": victim,
        }
        answer = frame.post("/webchat/messages", json={"message": "我的订单到哪了", **claims}, headers=headers)
        assert answer.status_code == 200 and answer.json()["messages"], answer.text[:300]
        assert user_texts(site, f"web:{own}") == ["我的订单到哪了"]
        assert user_texts(site, f"web:{victim}") == []
        # Nor does the attacker read the victim's conversation.
        assert victim_client.post("/webchat/messages", json={"message": "hello"}).status_code == 200
        assert "hello" in history_texts(victim_client, "hello")
        history = history_texts(frame, "我的订单到哪了", params=claims, headers=headers)
        assert "我的订单到哪了" in history and "hello" not in history
    finally:
        victim_client.close()
        frame.close()


def test_no_chat_token_reaches_the_access_log(site: Site) -> None:
    frame, token, _ = _widget_frame(site)
    try:
        headers = {CHAT_TOKEN_HEADER: token}
        assert frame.post("/webchat/messages", json={"message": "hello"}, headers=headers).status_code == 200
        assert frame.get("/webchat/history", headers=headers).status_code == 200
        with frame.stream("GET", "/webchat/events", params={"after": 0}, headers=headers) as stream:
            assert stream.status_code == 200
    finally:
        frame.close()
    time.sleep(0.5)  # uvicorn writes the line once the stream's response ends
    log = site.web_log.read_text()
    assert "/webchat/events?after=0" in log and "/webchat/sessions" in log, log[-2000:]
    signature = token.rsplit(".", 1)[1]
    assert token not in log and signature not in log


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
