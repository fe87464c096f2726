"""The review inbox finds misunderstood customer turns and groups similar ones."""

from __future__ import annotations

from datetime import timedelta

from router.bootstrap import Kefu
from router.crm.interactions import Turn, record_turns
from router.crm.models import Speaker, utcnow
from router.training.inbox import review_inbox
from router.training.labels import label_turns

THRESHOLD = 0.5


def _record(kefu: Kefu, turns: list[Turn]) -> dict[str, int]:
    with kefu.uow() as uow:
        stored = record_turns(uow.session, turns)
        uow.commit()
        return {interaction.text: interaction.id for interaction in stored}


def test_inbox_lists_low_confidence_fallback_and_agent_corrected_turns_grouped(kefu_any_db: Kefu) -> None:
    start = utcnow() - timedelta(hours=1)
    turns = [
        Turn("1", "web:a", Speaker.customer, "where is my parcel", intent="check_status", confidence=0.31,
             created_at=start),
        Turn("2", "web:b", Speaker.customer, "where is my parcel??", intent="check_status", confidence=0.35,
             created_at=start + timedelta(minutes=1)),
        Turn("3", "web:c", Speaker.customer, "Where is my parcel", intent="nlu_fallback", confidence=0.9,
             created_at=start + timedelta(minutes=2)),
        Turn("4", "web:d", Speaker.customer, "我想开发票", intent="nlu_fallback", confidence=0.2,
             created_at=start + timedelta(minutes=3)),
        Turn("5", "web:e", Speaker.customer, "hello", intent="greet", confidence=0.98,
             created_at=start + timedelta(minutes=4)),
        Turn("6", "web:f", Speaker.customer, "cancel my subscription", intent="deny", confidence=0.9,
             created_at=start + timedelta(minutes=5)),
        Turn("7", "web:f", Speaker.agent, "Sure, I will cancel it.", created_at=start + timedelta(minutes=6)),
    ]  # fmt: skip
    ids = _record(kefu_any_db, turns)

    with kefu_any_db.uow() as uow:
        groups = review_inbox(uow.session, THRESHOLD)

    listed = {turn_id for group in groups for turn_id in group.interaction_ids}
    assert ids["hello"] not in listed, "a confident, uncorrected turn needs no review"
    assert ids["Sure, I will cancel it."] not in listed, "only customer turns are reviewed"
    parcel = next(group for group in groups if ids["where is my parcel"] in group.interaction_ids)
    assert set(parcel.interaction_ids) == {
        ids["where is my parcel"],
        ids["where is my parcel??"],
        ids["Where is my parcel"],
    }
    assert groups[0] is parcel, "the most frequent group comes first"
    assert parcel.interaction_ids[0] == ids["Where is my parcel"], "newest turn first within a group"
    assert parcel.reasons == ["fallback", "low_confidence"]
    cancel = next(group for group in groups if ids["cancel my subscription"] in group.interaction_ids)
    assert cancel.reasons == ["agent_corrected"]
    invoice = next(group for group in groups if ids["我想开发票"] in group.interaction_ids)
    assert invoice.size == 1 and invoice.predicted_intents == ["nlu_fallback"]


def test_labelled_turns_leave_the_inbox(kefu: Kefu) -> None:
    ids = _record(
        kefu,
        [
            Turn("1", "web:a", Speaker.customer, "refund please", intent="nlu_fallback", confidence=0.2),
            Turn("2", "web:b", Speaker.customer, "how tall is the eiffel tower", intent="nlu_fallback", confidence=0.1),
        ],
    )
    with kefu.uow() as uow:
        label_turns(uow.session, [ids["how tall is the eiffel tower"]], "out_of_scope", kefu.settings.project_dir, None)
        uow.commit()
        groups = review_inbox(uow.session, THRESHOLD)
    assert [group.interaction_ids for group in groups] == [[ids["refund please"]]]


def test_empty_inbox(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        assert review_inbox(uow.session, THRESHOLD) == []
