"""The web app's side of the one public port, with no Rasa behind it: the chat cookie, and clear answers when the
assistant is away or a request is not one to relay."""

from __future__ import annotations

from fastapi.testclient import TestClient

from router.bootstrap import Kefu
from router.web.app import create_app
from router.web.webchat import CHAT_COOKIE, chat_cookie, chat_session


def test_the_chat_page_sets_a_signed_http_only_session_cookie_and_keeps_it(seeded: Kefu) -> None:
    with TestClient(create_app(seeded)) as browser:
        page = browser.get("/chat")
        assert page.status_code == 200 and "rasa" not in page.text.lower()
        header = page.headers["set-cookie"].lower()
        assert "httponly" in header and "samesite=lax" in header
        session = chat_session(seeded.secret_key, browser.cookies[CHAT_COOKIE])
        assert session is not None
        browser.get("/chat")
        assert chat_session(seeded.secret_key, browser.cookies[CHAT_COOKIE]) == session


def test_a_chat_cookie_signed_without_the_process_key_is_refused(seeded: Kefu) -> None:
    # Development has no KEFU_SECRET_KEY: the key the process generated must sign the cookie, never the empty setting.
    assert seeded.settings.secret_key == "" and seeded.secret_key
    victim = "0b7f1a52-3c1e-4d7a-9a51-2f6f0c9d8e11"
    with TestClient(create_app(seeded)) as attacker:
        for forged_with in ("", "kefu-dev-secret-change-me"):
            attacker.cookies.set(CHAT_COOKIE, chat_cookie(forged_with, victim))
            assert attacker.get("/webchat/history").status_code == 401
            assert attacker.post("/webchat/messages", json={"message": "hi"}).status_code == 401


def test_a_message_while_rasa_is_away_is_a_clear_502(seeded: Kefu) -> None:
    # The seeded CRM's Rasa URL points at a closed port.
    with TestClient(create_app(seeded)) as browser:
        browser.get("/chat")
        answer = browser.post("/webchat/messages", json={"message": "你好"})
        assert answer.status_code == 502 and "not reachable" in answer.json()["error"]
        assert (
            browser.post(
                "/webchat/messages", content=b"[1, 2]", headers={"Content-Type": "application/json"}
            ).status_code
            == 400
        )


def test_telegram_updates_are_refused_while_no_secret_token_is_set(seeded: Kefu) -> None:
    assert not seeded.settings.telegram_secret_token
    with TestClient(create_app(seeded)) as telegram:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": ""}):
            answer = telegram.post("/webhooks/telegram/webhook", json={"update_id": 1}, headers=headers)
            assert answer.status_code == 403
