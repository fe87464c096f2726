"""The CRM event broker logs every turn from real Rasa events, and loses none while the database is away."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from rasa.shared.core.events import SlotSet
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.event_broker import CrmEventBroker
from router.bootstrap import Kefu, bootstrap
from router.crm.interactions import Turn
from router.crm.models import Interaction, Role, Speaker, Ticket, TicketStatus
from router.db import build_engine
from router.routing.tickets import resolve
from tests.support.crm import make_kefu
from tests.support.published_events import bot_event, user_event
from tests.support.rasa_stack import running_stack
from tests.support.routing import make_team, make_user, new_ticket, shipped_policy

FLUSH_TIMEOUT_S = 60
TERMINATE_CONNECTIONS = (
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
)


@pytest.fixture
def broker(kefu_any_db: Kefu) -> Iterator[CrmEventBroker]:
    """A broker writing to the test's CRM through its own kefu, as it does inside the Rasa server."""
    instance = CrmEventBroker(bootstrap(kefu_any_db.settings), flush_interval_s=0.05)
    yield instance
    instance.writer.close(timeout_s=FLUSH_TIMEOUT_S)


def resolved_ticket(kefu: Kefu, sender: str) -> int:
    """A ticket of ``sender``'s, just resolved by a supervisor."""
    with kefu.uow() as uow:
        make_team(uow.session, "logistics")
        ticket = new_ticket(uow.session, sender=sender).id
        resolve(uow.session, ticket_id=ticket, actor=make_user(uow.session, Role.supervisor))
        uow.commit()
    return ticket


def stored(kefu: Kefu) -> list[Interaction]:
    """Every logged turn in the order it was said, detached so it outlives the session."""
    with kefu.uow() as uow:
        rows = list(uow.session.execute(select(Interaction).order_by(Interaction.created_at, Interaction.id)).scalars())
        uow.session.expunge_all()
        return rows


def test_user_and_bot_turns_are_stored_with_nlu_results_latency_and_redaction(
    kefu_any_db: Kefu, broker: CrmEventBroker
) -> None:
    broker.publish(
        user_event("web:s1", "订单12345还没到，电话13812345678", "check_status", 0.91, "zh", order_number="12345")
    )
    broker.publish({"sender_id": "web:s1", **SlotSet("language", "zh").as_dict()})
    broker.publish(bot_event("web:s1", "您的工单 T000001 当前状态：排队中。", delay_s=0.25))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)

    customer, bot = stored(kefu_any_db)
    assert customer.speaker is Speaker.customer
    assert customer.text == "订单12345还没到，电话[phone]"
    assert (customer.intent, customer.confidence, customer.language) == ("check_status", 0.91, "zh")
    assert customer.entities == [{"entity": "order_number", "value": "12345", "extractor": "RegexEntityExtractor"}]
    assert customer.channel.value == "rest"
    assert bot.speaker is Speaker.bot
    assert bot.conversation_id == customer.conversation_id
    assert bot.language == "zh"
    assert 200 <= bot.latency_ms <= 400


def test_the_same_event_published_twice_is_stored_once(kefu_any_db: Kefu, broker: CrmEventBroker) -> None:
    event = user_event("s2", "hello", "greet", 0.99, "en")
    broker.publish(event)
    broker.publish(event)
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    broker.publish(event)
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    assert [row.text for row in stored(kefu_any_db)] == ["hello"]


def test_an_unreadable_event_is_skipped_without_raising(kefu_any_db: Kefu, broker: CrmEventBroker) -> None:
    broker.publish({"sender_id": "s3", "event": "user", "timestamp": "not a time"})
    broker.publish(user_event("s3", "still logged", "greet", 0.8, "en"))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    assert [row.text for row in stored(kefu_any_db)] == ["still logged"]


def _conversation(broker: CrmEventBroker, sender_id: str, start: int, turns: int) -> list[str]:
    texts = []
    for index in range(start, start + turns):
        texts += [f"question {index}", f"answer {index}"]
        said_at = time.time() + index  # one turn per second keeps the expected order unambiguous
        broker.publish(user_event(sender_id, f"question {index}", "ask_faq", 0.7, "en", timestamp=said_at))
        broker.publish(bot_event(sender_id, f"answer {index}", delay_s=0.3, timestamp=said_at))
    return texts


@pytest.mark.postgres
def test_no_turn_is_lost_while_postgresql_refuses_connections(postgres_url: str, tmp_path) -> None:
    kefu = make_kefu(postgres_url, tmp_path)
    broker = CrmEventBroker(make_kefu(postgres_url, tmp_path), flush_interval_s=0.05)
    database = make_url(postgres_url).database
    admin = build_engine(make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        expected = _conversation(broker, "pg-outage", 0, 3)
        assert broker.writer.flush(FLUSH_TIMEOUT_S)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            connection.exec_driver_sql(TERMINATE_CONNECTIONS, (database,))
        expected += _conversation(broker, "pg-outage", 3, 5)
        time.sleep(1.5)
        assert broker.writer.failed_attempts > 0, "the writer should have met the outage"
        assert broker.writer.pending == 10, "turns said during the outage wait in the buffer"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        assert broker.writer.flush(FLUSH_TIMEOUT_S)
        assert [row.text for row in stored(kefu)] == expected
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        broker.writer.close(timeout_s=5)
        broker._kefu.dispose()
        kefu.dispose()
        admin.dispose()


def test_no_turn_is_lost_while_sqlite_is_locked(kefu: Kefu) -> None:
    broker = CrmEventBroker(bootstrap(kefu.settings), flush_interval_s=0.05)
    locker = sqlite3.connect(make_url(kefu.settings.database_url).database, isolation_level=None, timeout=5)
    try:
        expected = _conversation(broker, "sqlite-lock", 0, 2)
        assert broker.writer.flush(FLUSH_TIMEOUT_S)
        locker.execute("BEGIN EXCLUSIVE")
        expected += _conversation(broker, "sqlite-lock", 2, 4)
        time.sleep(1.5)
        assert broker.writer.pending == 8, "turns said while the database is locked wait in the buffer"
        locker.execute("COMMIT")
        assert broker.writer.flush(FLUSH_TIMEOUT_S)
        assert [row.text for row in stored(kefu)] == expected
    finally:
        locker.close()
        broker.writer.close(timeout_s=5)
        broker._kefu.dispose()


def test_control_characters_are_stripped_so_postgresql_accepts_the_turn(
    kefu_any_db: Kefu, broker: CrmEventBroker
) -> None:
    broker.publish(user_event("s4", "hi\x00 there\x1b[31m", "greet", 0.6, "en"))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    assert [row.text for row in stored(kefu_any_db)] == ["hi there[31m"]


def test_an_unstorable_turn_is_dropped_alone_and_the_rest_still_stored(
    kefu_any_db: Kefu, broker: CrmEventBroker
) -> None:
    unstorable = Turn("bad", "s5", Speaker.customer, "x", entities=[{"entity": "product", "value": {1, 2}}])
    broker.publish(user_event("s5", "before", "greet", 0.9, "en", timestamp=time.time() - 1))
    broker.writer.put(unstorable)
    broker.publish(user_event("s5", "after", "greet", 0.9, "en"))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    assert [row.text for row in stored(kefu_any_db)] == ["before", "after"]
    assert broker.writer.dropped == 1


def test_only_a_customer_with_a_recently_resolved_ticket_reopens_it_by_writing_again(
    kefu_any_db: Kefu, broker: CrmEventBroker
) -> None:
    with kefu_any_db.uow() as uow:
        make_team(uow.session, "logistics")
        supervisor = make_user(uow.session, Role.supervisor)
        resolved = new_ticket(uow.session, sender="web:back").id
        resolve(uow.session, ticket_id=resolved, actor=supervisor)
        still_open = new_ticket(uow.session, sender="web:waiting").id
        uow.commit()
    broker.publish(user_event("web:waiting", "still late", "complain", 0.9, "en"))
    broker.publish(user_event("web:back", "thanks", "thanks", 0.9, "en"))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    with kefu_any_db.uow() as uow:
        assert uow.session.get(Ticket, resolved).status is TicketStatus.resolved
    broker.publish(user_event("web:back", "it broke again", "complain", 0.9, "en"))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    with kefu_any_db.uow() as uow:
        assert uow.session.get(Ticket, resolved).status is not TicketStatus.resolved
        assert uow.session.get(Ticket, resolved).reopen_count == 1
        assert uow.session.get(Ticket, still_open).reopen_count == 0


def test_a_turn_said_before_the_resolution_but_logged_after_it_does_not_reopen(
    kefu_any_db: Kefu, broker: CrmEventBroker
) -> None:
    said_at = time.time()
    resolved = resolved_ticket(kefu_any_db, "web:slow-log")
    broker.publish(user_event("web:slow-log", "talk to a human", "request_human", 0.9, "en", timestamp=said_at))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    with kefu_any_db.uow() as uow:
        assert uow.session.get(Ticket, resolved).status is TicketStatus.resolved
    broker.publish(user_event("web:slow-log", "talk to a human", "request_human", 0.9, "en"))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    with kefu_any_db.uow() as uow:
        assert uow.session.get(Ticket, resolved).reopen_count == 1


def test_a_turn_said_within_the_window_but_stored_after_it_closed_still_reopens(
    kefu_any_db: Kefu, broker: CrmEventBroker
) -> None:
    window = shipped_policy().reopen_within
    said_at = datetime.now(timezone.utc) - window  # an hour after the resolution; the CRM was away since
    with kefu_any_db.uow() as uow:
        make_team(uow.session, "logistics")
        resolved = new_ticket(uow.session, sender="web:late-log").id
        resolve(uow.session, ticket_id=resolved, actor=make_user(uow.session, Role.supervisor))
        uow.session.get(Ticket, resolved).resolved_at = said_at - timedelta(hours=1)
        uow.commit()
    broker.publish(user_event("web:late-log", "it broke again", "complain", 0.9, "en", timestamp=said_at.timestamp()))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    with kefu_any_db.uow() as uow:
        assert uow.session.get(Ticket, resolved).reopen_count == 1


def test_feedback_given_to_the_satisfaction_survey_does_not_reopen_the_ticket(
    kefu_any_db: Kefu, broker: CrmEventBroker
) -> None:
    resolved = resolved_ticket(kefu_any_db, "web:rater")
    broker.publish(bot_event("web:rater", "请为本次服务打分 1-5", response="utter_ask_csat"))
    broker.publish(user_event("web:rater", "1分，太慢了", "complain", 0.8, "zh"))
    broker.publish(bot_event("web:rater", "我们哪里可以做得更好？", response="utter_ask_csat_comment"))
    broker.publish(user_event("web:rater", "客服态度太差了", "complain", 0.9, "zh"))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    with kefu_any_db.uow() as uow:
        assert uow.session.get(Ticket, resolved).status is TicketStatus.resolved
    broker.publish(bot_event("web:rater", "感谢您的反馈", response="utter_csat_comment_thanks"))
    broker.publish(user_event("web:rater", "东西又坏了", "complain", 0.9, "zh"))
    assert broker.writer.flush(FLUSH_TIMEOUT_S)
    with kefu_any_db.uow() as uow:
        assert uow.session.get(Ticket, resolved).reopen_count == 1


def test_a_survey_answer_on_another_replica_is_feedback_and_a_later_complaint_there_reopens(
    kefu_any_db: Kefu, broker: CrmEventBroker
) -> None:
    resolved = resolved_ticket(kefu_any_db, "web:two-replicas")
    other_replica = CrmEventBroker(bootstrap(kefu_any_db.settings), flush_interval_s=0.05)
    try:
        broker.publish(bot_event("web:two-replicas", "Please rate us 1-5", response="utter_ask_csat"))
        assert broker.writer.flush(FLUSH_TIMEOUT_S)
        other_replica.publish(user_event("web:two-replicas", "1, the courier was rude", "complain", 0.8, "en"))
        assert other_replica.writer.flush(FLUSH_TIMEOUT_S)
        with kefu_any_db.uow() as uow:
            assert uow.session.get(Ticket, resolved).status is TicketStatus.resolved

        broker.publish(bot_event("web:two-replicas", "Thank you!", response="utter_csat_thanks"))
        assert broker.writer.flush(FLUSH_TIMEOUT_S)
        other_replica.publish(user_event("web:two-replicas", "it is still broken", "complain", 0.9, "en"))
        assert other_replica.writer.flush(FLUSH_TIMEOUT_S)
        with kefu_any_db.uow() as uow:
            assert uow.session.get(Ticket, resolved).status is not TicketStatus.resolved
            assert uow.session.get(Ticket, resolved).reopen_count == 1
    finally:
        other_replica.writer.close(timeout_s=FLUSH_TIMEOUT_S)
        other_replica._kefu.dispose()


@pytest.mark.rasa
@pytest.mark.postgres
def test_real_rasa_keeps_replying_and_logs_every_turn_across_a_postgresql_outage(postgres_url: str, tmp_path) -> None:
    kefu = make_kefu(postgres_url, tmp_path)
    database = make_url(postgres_url).database
    admin = build_engine(make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    before, during, after = ["你好", "谢谢"], ["hello", "thanks a lot", "你是机器人吗"], ["bye"]
    try:
        with running_stack(postgres_url, tmp_path / "stack", event_broker=True) as stack:
            for text in before:
                assert stack.send("pg-live", text)
            with admin.connect() as connection:
                connection.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
                connection.exec_driver_sql(TERMINATE_CONNECTIONS, (database,))
            for text in during:
                assert stack.send("pg-live", text), f"no reply to {text!r} while the CRM was down\n{stack.logs()}"
            with admin.connect() as connection:
                connection.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            for text in after:
                assert stack.send("pg-live", text)
            deadline = time.monotonic() + FLUSH_TIMEOUT_S
            while len([row for row in stored(kefu) if row.speaker is Speaker.customer]) < 6:
                assert time.monotonic() < deadline, f"turns missing after the outage\n{stack.logs()}"
                time.sleep(0.5)
            rasa_log = (stack.log_dir / "rasa.log").read_text(errors="replace")
            assert "CRM unavailable" in rasa_log, "the outage should have been met and retried"
        rows = stored(kefu)
        assert [row.text for row in rows if row.speaker is Speaker.customer] == before + during + after
        assert len([row for row in rows if row.speaker is Speaker.bot]) >= 6
        assert all(row.intent for row in rows if row.speaker is Speaker.customer)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        kefu.dispose()
        admin.dispose()
