"""Every free text the CRM stores or exports is redacted by the service that writes it, in both languages."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import select

from router.analytics.export import to_csv
from router.bootstrap import Kefu
from router.crm.conversations import current_conversation
from router.crm.models import Role, Ticket, TicketEvent, TicketEventKind, TrainingExample
from router.crm.redaction import find_pii
from router.routing.tickets import add_note, open_ticket, reopen, resolve
from router.training.export import export_training_data
from router.training.labels import COMPLAINT_TARGET, INTENT_TARGET
from router.training.nlu_yaml import read_nlu_file
from tests.support.routing import assessment, make_team, make_user

PERSONAL = {
    "zh": (
        "客户电话13812345678，身份证110101199003074514，老证110101900307451，卡号6011 0009 9013 9424，"
        "护照E12345678，邮箱wang_fang@qq.com，地址上海市浦东新区张江路100弄3号"
    ),
    "en": (
        "customer phone (555) 123-4567, card 4111-1111-1111-1111, passport no. 123456789, "
        "mail jane.doe@example.org, lives at 221B Baker Street, postcode NW1 6XE"
    ),
}
SURVIVING_DIGITS = ("13812345678", "110101199003074514", "110101900307451", "9424", "12345678", "4567", "1111")


def assert_redacted(text: str) -> None:
    """No piece of personal data, nor the digits of one, is left in ``text``."""
    assert find_pii(text) == [], text
    assert not [digits for digits in SURVIVING_DIGITS if digits in text], text
    assert not [word for word in ("wang_fang", "jane.doe", "Baker", "张江路", "NW1 6XE") if word in text], text


@pytest.mark.parametrize("language", PERSONAL)
def test_ticket_subject_description_and_a_phone_given_as_order_number_are_stored_redacted(
    kefu: Kefu, language: str
) -> None:
    with kefu.uow() as uow:
        make_team(uow.session, "logistics")
        conversation = current_conversation(uow.session, f"web:ticket-{language}", language)
        given = open_ticket(
            uow.session,
            conversation=conversation,
            text=PERSONAL[language],
            order_number="13812345678",
            assessment=assessment("delivery"),
        ).id
        kept = open_ticket(
            uow.session,
            conversation=conversation,
            text="快递没到 parcel late",
            order_number="202311301234",
            assessment=assessment("delivery"),
        ).id
        uow.commit()
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, given)
        assert_redacted(ticket.subject)
        assert_redacted(ticket.description)
        assert "[phone]" in ticket.description and "[address]" in ticket.description
        assert ticket.order_number == "[phone]"
        assert uow.session.get(Ticket, kept).order_number == "202311301234", "a real order number is kept as given"


@pytest.mark.parametrize("language", PERSONAL)
def test_notes_resolve_summaries_and_reopen_reasons_are_stored_redacted(kefu: Kefu, language: str) -> None:
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        supervisor = make_user(uow.session, Role.supervisor, [team])
        conversation = current_conversation(uow.session, f"web:notes-{language}", language)
        ticket = open_ticket(
            uow.session, conversation=conversation, text="parcel late", order_number=None, assessment=assessment()
        )
        add_note(uow.session, ticket_id=ticket.id, actor=supervisor, text=PERSONAL[language])
        resolve(uow.session, ticket_id=ticket.id, actor=supervisor, summary=PERSONAL[language])
        reopen(uow.session, ticket_id=ticket.id, actor=supervisor, reason=PERSONAL[language])
        uow.commit()
    with kefu.uow() as uow:
        trail = {event.kind: event.data for event in uow.session.execute(select(TicketEvent)).scalars()}
    for kind, key in [
        (TicketEventKind.note, "text"),
        (TicketEventKind.resolved, "summary"),
        (TicketEventKind.reopened, "reason"),
    ]:
        assert_redacted(trail[kind][key])
        assert "[card]" in trail[kind][key]


@pytest.mark.parametrize("language", PERSONAL)
def test_analytics_csv_exports_redact_text_cells_even_of_rows_stored_raw(language: str) -> None:
    exported = to_csv([{"description": PERSONAL[language], "csat": 2}, {"description": "=cmd|x", "csat": 5}])
    assert_redacted(exported)
    assert "'=cmd|x" in exported, "formula neutralising still applies"


def test_data_export_redacts_examples_stored_before_redaction_knew_their_kind(kefu: Kefu) -> None:
    settings = kefu.settings
    with kefu.uow() as uow:
        for language, text in PERSONAL.items():
            uow.session.add(TrainingExample(target=INTENT_TARGET, text=text, label="greet", language=language))
            uow.session.add(TrainingExample(target=COMPLAINT_TARGET, text=text, label="delivery", language=language))
        uow.commit()
        export_training_data(uow.session, settings.var_dir / "data", settings.project_dir)
    examples, _ = read_nlu_file(settings.var_dir / "data" / "reviewed" / "nlu.yml")
    with (settings.var_dir / "data" / "triage" / "reviewed.csv").open(encoding="utf-8") as handle:
        complaints = list(csv.DictReader(handle))
    assert len(examples) == len(complaints) == 2
    for text in [example.text for example in examples] + [row["text"] for row in complaints]:
        assert_redacted(text)
