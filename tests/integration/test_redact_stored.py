"""`kefu db redact`: rows stored before their kind of personal data was recognised are redacted in place, on SQLite
and PostgreSQL, and a second run changes nothing."""

from __future__ import annotations

from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation
from router.crm.models import CsatRating, Interaction, Speaker, Ticket, TicketEvent, TicketEventKind, TrainingExample
from router.crm.redaction import find_pii
from router.routing.tickets import open_ticket
from tests.support.cli import invoke_kefu, run_kefu
from tests.support.routing import assessment, make_team

RAW = "护照E73920418，住在北京市朝阳区建国路88号 / passport number 548213907, 221B Baker Street"


def _store_raw_rows(kefu: Kefu) -> int:
    """Rows as an older kefu left them: written straight to the tables, unredacted."""
    with kefu.uow() as uow:
        make_team(uow.session, "logistics")
        conversation = current_conversation(uow.session, "web:old-rows", "zh")
        ticket = open_ticket(
            uow.session, conversation=conversation, text="快递没到", order_number=None, assessment=assessment()
        )
        ticket.subject, ticket.description, ticket.order_number = RAW, RAW, "73920418"
        uow.session.add_all(
            [
                TicketEvent(ticket_id=ticket.id, kind=TicketEventKind.note, data={"text": RAW}),
                Interaction(
                    conversation_id=conversation.id,
                    customer_id=conversation.customer_id,
                    speaker=Speaker.customer,
                    channel=conversation.channel,
                    text=RAW,
                    entities=[{"entity": "order_number", "value": "73920418"}],
                ),
                CsatRating(customer_id=conversation.customer_id, ticket_id=ticket.id, score=2, comment=RAW),
                TrainingExample(target="complaint", text=RAW, label="delivery", language="zh"),
            ]
        )
        uow.commit()
        return ticket.id


def test_kefu_db_redact_redacts_old_rows_once(kefu_any_db: Kefu) -> None:
    ticket_id = _store_raw_rows(kefu_any_db)
    env = {"KEFU_DATABASE_URL": kefu_any_db.settings.database_url}

    first = run_kefu("db", "redact", env=env)
    second = invoke_kefu("db", "redact", env=env)

    assert first.returncode == 0, first.stderr
    said = " ".join(first.stdout.split())  # rich wraps lines at the terminal's width
    assert "1 csat_ratings, 1 interactions, 1 ticket_events, 1 tickets, 1 training_examples" in said
    assert "redacted: nothing" in second.stdout
    with kefu_any_db.uow() as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        note = uow.session.execute(select(TicketEvent).where(TicketEvent.kind == TicketEventKind.note)).scalar_one()
        turn = uow.session.execute(select(Interaction)).scalar_one()
        texts = [
            ticket.subject,
            ticket.description,
            note.data["text"],
            turn.text,
            uow.session.execute(select(CsatRating.comment)).scalar_one(),
            uow.session.execute(select(TrainingExample.text)).scalar_one(),
        ]
        assert ticket.order_number == "[passport]"
        assert turn.entities == [{"entity": "order_number", "value": "[passport]"}]
    for text in texts:
        assert find_pii(text) == [] and "73920418" not in text and "548213907" not in text, text
        assert "[passport]" in text and "[address]" in text
