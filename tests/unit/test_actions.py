"""Actions that need only the CRM: FAQ, CSAT, NLU fallback and the complaint form's validation."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.complaint import ValidateComplaintForm
from actions.complaint_answers import is_descriptive
from actions.csat import ActionRecordCsat, ActionStoreCsatComment, comment_of
from actions.fallback import ActionNluFallback
from actions.faq import ActionAnswerFaq
from router.bootstrap import Kefu
from router.crm.csat import parse_score
from router.crm.models import CsatRating
from router.crm.seed import seed_faq
from router.errors import InvalidInput
from tests.support.actions import ASKED, make_tracker, run, user_event
from tests.support.crm import make_kefu


@pytest.fixture
def kefu_with_faq(kefu: Kefu) -> Kefu:
    with kefu.uow() as uow:
        seed_faq(uow.session, kefu.settings.data_dir)
        uow.commit()
    return kefu


def test_faq_question_is_answered_from_the_crm_table_in_the_customer_language(kefu_with_faq: Kefu) -> None:
    _, zh = run(ActionAnswerFaq(kefu_with_faq), make_tracker([user_event("怎么申请退货？", "ask_faq")]))
    tracker = make_tracker([user_event("How do I return an item?", "ask_faq")], slots={"language": "en"})
    _, en = run(ActionAnswerFaq(kefu_with_faq), tracker)
    assert "申请售后" in zh[0]["text"]
    assert "after-sales" in en[0]["text"]


def test_faq_question_nothing_matches_says_not_sure_and_offers_a_human(kefu_with_faq: Kefu) -> None:
    events, messages = run(ActionAnswerFaq(kefu_with_faq), make_tracker([user_event("量子纠缠的哲学意义", "ask_faq")]))
    assert [message["response"] for message in messages] == ["utter_faq_not_sure"]
    assert events == [FollowupAction("utter_offer_handoff")]


def test_an_unsure_faq_answer_mid_complaint_does_not_offer_a_human_and_derail_the_form(kefu_with_faq: Kefu) -> None:
    tracker = make_tracker([user_event("量子纠缠的哲学意义", "ask_faq")], active_loop={"name": "complaint_form"})
    events, messages = run(ActionAnswerFaq(kefu_with_faq), tracker)
    assert [message["response"] for message in messages] == ["utter_faq_not_sure_in_form"]
    assert events == []


def test_rating_with_comment_is_stored_and_thanked(kefu: Kefu) -> None:
    tracker = make_tracker(
        [ASKED, user_event("4分，物流有点慢 13812345678", "give_rating", entities=[{"entity": "rating", "value": "4"}])]
    )
    events, messages = run(ActionRecordCsat(kefu), tracker)
    assert messages[0]["response"] == "utter_csat_thanks"
    assert {"event": "slot", "name": "csat_score", "value": "4", "timestamp": None} in events
    with kefu.uow() as uow:
        rating = uow.session.execute(select(CsatRating)).scalar_one()
        assert (rating.score, rating.comment) == (4, "4分，物流有点慢 [phone]")


def test_rating_from_a_button_is_stored_without_a_comment(kefu: Kefu) -> None:
    tracker = make_tracker(
        [ASKED, user_event('/give_rating{"rating":"5"}', "give_rating", entities=[{"entity": "rating", "value": "5"}])],
        slots={"language": "en"},
    )
    run(ActionRecordCsat(kefu), tracker)
    with kefu.uow() as uow:
        rating = uow.session.execute(select(CsatRating)).scalar_one()
        assert (rating.score, rating.comment) == (5, "")


def test_a_low_score_without_a_comment_asks_what_went_wrong_and_stores_the_answer(kefu: Kefu) -> None:
    low = make_tracker([ASKED, user_event("2", "give_rating", entities=[{"entity": "rating", "value": "2"}])])
    events, messages = run(ActionRecordCsat(kefu), low)
    assert messages == [], "the comment form asks the question; no thanks before the customer has answered"
    assert {"event": "slot", "name": "csat_comment_wanted", "value": True, "timestamp": None} in events
    answer = make_tracker(
        [user_event("客服回复太慢了，电话13812345678", "complain")],
        slots={"csat_comment": "客服回复太慢了，电话13812345678"},
    )
    events, messages = run(ActionStoreCsatComment(kefu), answer)
    assert [message["response"] for message in messages] == ["utter_csat_comment_thanks"]
    assert events == [{"event": "slot", "name": "csat_comment_wanted", "value": None, "timestamp": None}]
    with kefu.uow() as uow:
        rating = uow.session.execute(select(CsatRating)).scalar_one()
        assert (rating.score, rating.comment) == (2, "客服回复太慢了，电话[phone]")


def test_declining_to_comment_keeps_the_rating_as_it_was(kefu: Kefu) -> None:
    run(
        ActionRecordCsat(kefu),
        make_tracker([ASKED, user_event("1", "give_rating", entities=[{"entity": "rating", "value": "1"}])]),
    )
    _, messages = run(
        ActionStoreCsatComment(kefu), make_tracker([user_event("跳过", "deny")], slots={"csat_comment": "跳过"})
    )
    assert [message["response"] for message in messages] == ["utter_csat_thanks"]
    with kefu.uow() as uow:
        assert uow.session.execute(select(CsatRating.comment)).scalar_one() == ""


def test_a_good_score_is_thanked_at_once(kefu: Kefu) -> None:
    events, messages = run(ActionRecordCsat(kefu), make_tracker([ASKED, user_event("5", "give_rating")]))
    assert [message["response"] for message in messages] == ["utter_csat_thanks"]
    assert all(event["name"] != "csat_comment_wanted" for event in events)


def test_rating_without_a_score_asks_again_and_stores_nothing(kefu: Kefu) -> None:
    events, messages = run(ActionRecordCsat(kefu), make_tracker([ASKED, user_event("还行吧", "give_rating")]))
    assert messages == []
    # The question again as an action event, so the rating rules see it asked.
    assert events == [SlotSet("csat_score", None), FollowupAction("utter_ask_csat")]
    with kefu.uow() as uow:
        assert uow.session.execute(select(CsatRating)).first() is None


@pytest.mark.parametrize(
    "earlier",
    [[], [ASKED, user_event("5", "give_rating"), {"event": "action", "name": "action_record_csat"}]],
    ids=["never asked", "already rated"],
)
def test_a_number_when_no_rating_was_asked_for_is_not_stored(kefu: Kefu, earlier: list[dict[str, Any]]) -> None:
    tracker = make_tracker([*earlier, user_event("I have 3 questions", "give_rating")], slots={"csat_score": "5"})
    _, messages = run(ActionRecordCsat(kefu), tracker)
    assert [message["response"] for message in messages] == ["utter_ask_rephrase"]
    with kefu.uow() as uow:
        assert uow.session.execute(select(CsatRating)).first() is None


def test_a_stale_score_slot_is_not_taken_for_a_rating_without_a_number(kefu: Kefu) -> None:
    tracker = make_tracker([ASKED, user_event("还行吧", "give_rating")], slots={"csat_score": "5"})
    run(ActionRecordCsat(kefu), tracker)
    with kefu.uow() as uow:
        assert uow.session.execute(select(CsatRating)).first() is None


def test_a_crm_outage_gets_a_polite_apology_not_a_crash(tmp_path) -> None:
    kefu = make_kefu(f"sqlite:///{tmp_path / 'crm.db'}", tmp_path)
    kefu.engine.dispose()
    (tmp_path / "crm.db").unlink()
    (tmp_path / "crm.db").mkdir()  # a directory where the database file should be: every connect fails
    _, messages = run(ActionRecordCsat(kefu), make_tracker([ASKED, user_event("5", "give_rating")]))
    # A domain response, so Rasa says it in the customer's language like every other answer.
    assert [(message["response"], message["text"]) for message in messages] == [("utter_service_unavailable", None)]


def test_first_fallback_asks_to_rephrase_second_in_a_row_offers_a_human() -> None:
    first = [user_event("你好", "greet"), user_event("阿巴阿巴", "nlu_fallback")]
    _, messages = run(ActionNluFallback(), make_tracker(first))
    assert messages[0]["response"] == "utter_ask_rephrase"
    events, messages = run(ActionNluFallback(), make_tracker([*first, user_event("嗯嗯嗯", "nlu_fallback")]))
    assert messages == []
    assert events == [FollowupAction("utter_offer_handoff")]


def test_fallback_after_an_understood_message_starts_counting_again() -> None:
    events = [user_event("???", "nlu_fallback"), user_event("hi", "greet"), user_event("asdf", "nlu_fallback")]
    _, messages = run(ActionNluFallback(), make_tracker(events))
    assert messages[0]["response"] == "utter_ask_rephrase"


@pytest.mark.parametrize("text", ["", "   ", "😀😀😀", "\x00\x07", "退" * 10_000])
def test_unreadable_input_is_told_so_politely(text: str) -> None:
    _, messages = run(ActionNluFallback(), make_tracker([user_event(text, "nlu_fallback")]))
    assert messages[0]["response"] == "utter_bad_input"


def test_complaint_form_asks_again_for_a_bare_complaint_and_keeps_a_real_one() -> None:
    form = ValidateComplaintForm()
    dispatcher = CollectingDispatcher()
    tracker = make_tracker([user_event("我要投诉", "complain")])
    assert form.validate_complaint_description("我要投诉", dispatcher, tracker, {}) == {"complaint_description": None}
    kept = form.validate_complaint_description(" 快递三天都没到，客服也不回 ", dispatcher, tracker, {})
    assert kept == {"complaint_description": "快递三天都没到，客服也不回"}
    assert not is_descriptive("I want to make a complaint")
    assert is_descriptive("The blender arrived broken")


def test_score_only_messages_have_no_comment() -> None:
    assert [comment_of(text) for text in ["5", "五星", "4 stars!", "3/5"]] == ["", "", "", ""]
    assert comment_of("2, the agent was rude") == "2, the agent was rude"


@pytest.mark.parametrize(("given", "score"), [("5", 5), (4.0, 4), ("四星", 4), ("I'd give it 3", 3), ("２分", 2)])
def test_ratings_are_read_from_numbers_words_and_text(given: object, score: int) -> None:
    assert parse_score(given) == score


@pytest.mark.parametrize("given", ["6", "0", True, 4.5, "great", None, "10"])
def test_anything_but_1_to_5_is_refused(given: object) -> None:
    with pytest.raises(InvalidInput):
        parse_score(given)
