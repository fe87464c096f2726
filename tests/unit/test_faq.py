"""FAQ answers come from the CRM's faq_entries table by similarity, per language, and follow admins' edits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.faq import FaqMatcher, answer_question
from router.crm.models import FaqEntry
from router.crm.seed import seed_faq
from router.settings import Settings

# The threshold kefu ships with, so the tests judge the configured behaviour.
THRESHOLD = Settings().faq_similarity_threshold


@pytest.fixture
def seeded(kefu_any_db: Kefu) -> Kefu:
    with kefu_any_db.uow() as uow:
        seed_faq(uow.session, kefu_any_db.settings.data_dir)
        uow.commit()
    return kefu_any_db


def tags_of_answer(kefu: Kefu, question: str, language: str) -> list[str] | None:
    with kefu.uow() as uow:
        match = FaqMatcher().answer(uow.session, question, language, THRESHOLD)
        if match is None:
            return None
        return uow.session.get(FaqEntry, match.entry_id).tags


# Paraphrases, not the seeded questions themselves.
@pytest.mark.parametrize(
    ("question", "language", "tag"),
    [
        ("钱什么时候退回来", "zh", "refund"),
        ("可以用支付宝付吗", "zh", "payment"),
        ("密码忘了登不上去", "zh", "account"),
        ("发票怎么开", "zh", "invoice"),
        ("地址写错了能改吗", "zh", "address"),
        ("客服几点下班", "zh", "hours"),
        ("when do i get my refund", "en", "refund"),
        ("do you take alipay", "en", "payment"),
        ("forgot password", "en", "account"),
        ("can i change my address", "en", "address"),
        ("how long until my package arrives", "en", "delivery"),
        ("how do I cancel an order", "en", "cancel"),
    ],
)
def test_paraphrased_questions_find_their_entry(seeded: Kefu, question: str, language: str, tag: str) -> None:
    assert tags_of_answer(seeded, question, language) == [tag]


@pytest.mark.parametrize(
    ("question", "language"),
    [("今天天气怎么样", "zh"), ("帮我写一首诗", "zh"), ("tell me a joke", "en"), ("who won the world cup", "en")],
)
def test_unrelated_questions_are_below_the_threshold(seeded: Kefu, question: str, language: str) -> None:
    assert tags_of_answer(seeded, question, language) is None


def test_answers_come_in_the_customers_language(seeded: Kefu) -> None:
    with seeded.uow() as uow:
        chinese = answer_question(uow.session, "退款多久到账", "zh", THRESHOLD)
        english = answer_question(uow.session, "how long does a refund take", "en", THRESHOLD)
    assert chinese is not None and chinese.language == "zh" and "到账" in chinese.answer
    assert english is not None and english.language == "en" and "refund" in english.answer


def test_admin_edits_and_deactivation_apply_at_once(seeded: Kefu) -> None:
    matcher = FaqMatcher()
    with seeded.uow() as uow:
        assert matcher.answer(uow.session, "forgot password", "en", THRESHOLD) is not None
        entry = uow.session.execute(
            select(FaqEntry).where(FaqEntry.language == "en", FaqEntry.tags.is_not(None))
        ).scalars()
        password_entry = next(e for e in entry if e.tags == ["account"])
        password_entry.answer = "Use the new self-service page at /reset."
        uow.commit()
    with seeded.uow() as uow:
        assert matcher.answer(uow.session, "forgot password", "en", THRESHOLD).answer.endswith("/reset.")
        uow.session.get(FaqEntry, password_entry.id).active = False
        uow.commit()
    with seeded.uow() as uow:
        match = matcher.answer(uow.session, "forgot password", "en", THRESHOLD)
        assert match is None or match.entry_id != password_entry.id


@pytest.mark.parametrize("question", ["", "   ", "退款" * 5000])
def test_empty_or_huge_questions_get_no_answer(seeded: Kefu, question: str) -> None:
    with seeded.uow() as uow:
        assert answer_question(uow.session, question, "zh", THRESHOLD) is None


def test_an_empty_faq_table_answers_nothing(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        assert FaqMatcher().answer(uow.session, "how long does a refund take", "en", THRESHOLD) is None


def test_a_language_without_entries_falls_back_to_all_entries(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        uow.session.add(
            FaqEntry(language="en", question="Do you sell gift cards?", answer="Yes, from 10 to 500.", tags=[])
        )
        uow.commit()
    with kefu.uow() as uow:
        match = FaqMatcher().answer(uow.session, "gift cards?", "zh", THRESHOLD)
    assert match is not None and match.answer.startswith("Yes")
