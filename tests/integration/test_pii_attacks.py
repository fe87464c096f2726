"""Attack: personal data sent through every path that stores text, then every stored row read straight from the
databases. No phone, email, ID, card or passport number, street address or postcode may survive, in either language.

The paths are the real ones: a Rasa conversation through the real Rasa and action servers (ticket subject and
description, CSAT comment, the interaction log and Rasa's tracker store), and the web app's API and console forms
(agent replies, internal notes, resolve summaries).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.models import Base, Conversation, CsatRating, Ticket
from tests.support.crm import open_demo_ticket
from tests.support.rasa_stack import RasaStack
from tests.support.web import bearer, login

# What each language's customer gives away, and what of it must not be found in any stored row: the digits of each
# number whatever its spacing, the email's local part, the street and the postcode.
PERSONAL = {
    "zh": {
        "said": (
            "电话13912345670，邮箱wang.fang@qq.com，身份证110101199003074514，老身份证110101900307451，"
            "卡号6011 0009 9013 9424，护照E73920418，地址北京市朝阳区建国路88号5号楼2单元1203室"
        ),
        "traces": (
            "13912345670",
            "wang.fang",
            "110101199003074514",
            "110101900307451",
            "6011000990139424",
            "73920418",
            "建国路88号",
            "1203室",
        ),
    },
    "en": {
        "said": (
            "call me on (415) 555-0132 or +44 20 7946 0958, mail jane.doe@example.org, card 4111-1111-1111-1111, "
            "passport number 548213907, I live at 221B Baker Street, postcode NW1 6XE"
        ),
        "traces": (
            "4155550132",
            "442079460958",
            "jane.doe",
            "4111111111111111",
            "548213907",
            "BakerStreet",
            "NW16XE",
        ),
    },
}
_SEPARATORS = re.compile(r"[\s\-()+]")


def _normalised(text: str) -> str:
    return _SEPARATORS.sub("", text)


def crm_strings(engine: sa.engine.Engine) -> Iterator[tuple[str, str]]:
    """Every text and JSON value stored in the CRM, as ``(table.column, text)``."""
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, (sa.String, sa.Text, sa.JSON))]
            if not columns:
                continue
            for row in connection.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                        yield f"{table.name}.{column.name}", text


def tracker_strings(path: Path) -> Iterator[tuple[str, str]]:
    """Every stored tracker event, its JSON decoded so Chinese text is compared as text, not as \\u escapes."""
    with sqlite3.connect(path) as connection:
        for sender, type_name, data in connection.execute("SELECT sender_id, type_name, data FROM events"):
            yield f"events[{sender} {type_name}]", json.dumps(json.loads(data), ensure_ascii=False)


def leaks(stored: Iterator[tuple[str, str]], language: str) -> list[tuple[str, str]]:
    """The stored values that still hold a trace of what the customer gave away."""
    traces = PERSONAL[language]["traces"]
    return [(where, text) for where, text in stored if any(trace in _normalised(text) for trace in traces)]


@pytest.mark.parametrize("language", PERSONAL)
def test_agent_replies_notes_and_resolve_summaries_keep_no_personal_data(seeded: Kefu, language: str) -> None:
    said = PERSONAL[language]["said"]
    # The tickets come from the test helper (its customer turn bypasses the log's service); the conversation test
    # below sends personal data through a complaint.
    by_api = open_demo_ticket(seeded, f"web:pii-api-{language}", "快递三天没到 parcel late")
    by_console = open_demo_ticket(seeded, f"web:pii-console-{language}", "快递三天没到 parcel late")
    api = bearer(seeded, "lina")
    version = api.get(f"/api/tickets/{by_api}").json()["version"]
    assert api.post(f"/api/tickets/{by_api}/reply", json={"text": said, "version": version}).status_code == 200
    assert api.post(f"/api/tickets/{by_api}/notes", json={"text": said}).status_code == 201
    assert api.post(f"/api/tickets/{by_api}/resolve", json={"summary": said}).status_code == 200
    console, csrf = login(seeded, "lina")
    for action in ("reply", "notes"):
        response = console.post(f"/console/tickets/{by_console}/{action}", data={"text": said, "csrf_token": csrf})
        assert response.status_code == 200, (action, response.text[:300])

    assert leaks(crm_strings(seeded.engine), language) == []
    placeholders = {where for where, text in crm_strings(seeded.engine) if "[phone]" in text and "[card]" in text}
    assert {"interactions.text", "ticket_events.data"} <= placeholders


CONVERSATIONS = {
    "zh": (
        "web:pii-chat-zh",
        "我要投诉",
        "吹风机用一次就坏了，我要退款。{said}",
        "不记得了",
        "转人工",
        "2分",
        "{said}",
    ),
    "en": (
        "web:pii-chat-en",
        "I want to make a complaint",
        "the kettle leaks and burnt my table. {said}",
        "I don't know it",
        "let me talk to a real agent please",
        "2",
        "the agent was slow. {said}",
    ),
}


def _texts(replies: list[dict]) -> str:
    return "\n".join(reply.get("text") or "" for reply in replies)


@pytest.mark.rasa
@pytest.mark.parametrize("language", CONVERSATIONS)
def test_a_conversation_full_of_personal_data_leaves_none_in_the_crm_or_the_tracker_store(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, opener, complaint, no_order, human, score, comment = CONVERSATIONS[language]
    said = PERSONAL[language]["said"]
    replies = [_texts(rasa_stack.send(sender, opener)), _texts(rasa_stack.send(sender, complaint.format(said=said)))]
    replies.append(_texts(rasa_stack.send(sender, no_order)))
    with stack_crm.uow() as uow:
        ticket = uow.session.execute(
            select(Ticket)
            .join(Conversation, Conversation.id == Ticket.conversation_id)
            .where(Conversation.sender_id == sender)
        ).scalar_one_or_none()
        assert ticket is not None, (replies, rasa_stack.logs()[-2000:])
        ticket_id = ticket.id
    rasa_stack.send(sender, human)
    # The agent answers and resolves through the API; resolving makes the bot ask the customer for a rating.
    api = bearer(stack_crm, "supervisor")  # a fraud or safety floor may route the ticket to any team
    version = api.get(f"/api/tickets/{ticket_id}").json()["version"]
    assert api.post(f"/api/tickets/{ticket_id}/reply", json={"text": said, "version": version}).status_code == 200
    assert api.post(f"/api/tickets/{ticket_id}/notes", json={"text": said}).status_code == 201
    resolved = api.post(f"/api/tickets/{ticket_id}/resolve", json={"summary": said})
    assert "rating" in resolved.json()["message"], resolved.text
    asked = _texts(rasa_stack.send(sender, score))
    thanked = _texts(rasa_stack.send(sender, comment.format(said=said)))
    with stack_crm.uow() as uow:
        rating = uow.session.execute(select(CsatRating).where(CsatRating.ticket_id == ticket_id)).scalar_one()
        assert rating.score == 2 and "[phone]" in rating.comment, (asked, thanked, rating.comment)
        ticket = uow.session.get(Ticket, ticket_id)
        assert "[phone]" in ticket.description, ticket.description

    assert leaks(crm_strings(stack_crm.engine), language) == []
    tracker = list(tracker_strings(rasa_stack.log_dir / "rasa_tracker.db"))
    assert any(sender in where for where, _ in tracker)
    assert leaks(iter(tracker), language) == []


@pytest.mark.rasa
def test_the_tracker_store_table_keeps_no_phone_or_card_number_of_a_real_conversation(rasa_stack: RasaStack) -> None:
    sender = "web:pii-tracker"
    messages = [
        "我的电话13812345678，卡号4111 1111 1111 1111 扣了两次款",
        "my phone is (415) 555-0132, card 5555 5555 5555 4444",
    ]
    replies = [rasa_stack.send(sender, message) for message in messages]
    assert all(replies), rasa_stack.logs()[-2000:]

    stored = [text for where, text in tracker_strings(rasa_stack.log_dir / "rasa_tracker.db") if sender in where]
    user_texts = [json.loads(text).get("text") for text in stored if '"event": "user"' in text]
    assert user_texts == ["我的电话[phone]，卡号[card] 扣了两次款", "my phone is [phone], card [card]"]
    flat = _normalised(" ".join(stored))
    assert not [n for n in ("13812345678", "4111111111111111", "4155550132", "5555555555554444") if n in flat]
