"""The near-copy split and the public-data mapping, on small sets made here."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.errors import InvalidInput
from router.public_data.mapping import NO_MEANING, Meaning, load_mapping, load_project_mapping
from router.public_data.sources import BANKING77, CLINC150, PublicRow
from router.public_data.split import canonical, held_out_mask, near_copy_groups

PROJECT = Path(__file__).resolve().parents[2]


def test_near_copies_share_a_group_and_different_sentences_do_not() -> None:
    texts = [
        "I found an unauthorized card payment",
        "i found an unauthorised card payment.",
        "Where is my parcel, it was due on Monday",
        "Where is my parcel? It was due on Monday!",
        "How do I change the language of the app",
    ]
    groups = near_copy_groups(texts)
    assert groups[0] == groups[1]
    assert groups[2] == groups[3]
    assert len({groups[0], groups[2], groups[4]}) == 3


def test_near_copies_join_through_each_other() -> None:
    texts = [
        "someone used my card without my permission yesterday",
        "Someone used my card without my permission yesterday!!",
        "someone used my card without permission yesterday",
        "the parcel never arrived at all",
    ]
    groups = near_copy_groups(texts)
    assert groups[0] == groups[1] == groups[2] != groups[3]


def test_british_and_american_spellings_are_the_same_sentence() -> None:
    assert canonical("I found an Unauthorised card payment!") == canonical("i found an unauthorized card payment")


def test_every_group_lands_wholly_on_one_side_and_the_share_is_near_the_asked_one() -> None:
    base = [f"customer message number {n} about topic {n * 7 % 13} and thing {n * 11 % 17}" for n in range(400)]
    texts = [variant for text in base for variant in (text, text.upper() + "!")]
    held_out = held_out_mask(texts, share=0.3)
    groups = near_copy_groups(texts)
    for group in set(groups):
        sides = {bool(out) for out, member in zip(held_out, groups, strict=True) if member == group}
        assert len(sides) == 1
    assert 0.2 < held_out.mean() < 0.4


def test_the_split_does_not_depend_on_row_order() -> None:
    texts = [f"message {n} says something {n % 9} different {n % 5}" for n in range(200)]
    forward = dict(zip(texts, held_out_mask(texts), strict=True))
    backward = dict(zip(reversed(texts), held_out_mask(list(reversed(texts))), strict=True))
    assert forward == backward


def test_a_share_outside_zero_and_one_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        held_out_mask(["a", "b"], share=1.0)


def test_the_shipped_mapping_names_only_known_intents_and_categories() -> None:
    mapping = load_project_mapping(PROJECT, PROJECT / "data")
    stolen = mapping.meaning(PublicRow("my card is gone", "lost_or_stolen_card", BANKING77))
    assert stolen == Meaning(intent="complain", category="fraud_security", risk="fraud")
    assert mapping.meaning(PublicRow("what's the weather", "weather", CLINC150)).intent == "out_of_scope"
    assert mapping.meaning(PublicRow("top up limit?", "top_up_limits", BANKING77)) == NO_MEANING


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("banking77:\n  x: {intent: complian}\n", "unknown intent 'complian'"),
        ("banking77:\n  x: {category: billing}\n", "unknown category 'billing'"),
        ("banking77:\n  x: {risk: fire}\n", "unknown risk 'fire'"),
        ("banking77:\n  x: {intnet: complain}\n", "unknown fields intnet"),
        ("imdb:\n  x: {intent: complain}\n", "unknown source 'imdb'"),
        ("banking77: [unclosed\n", "not a readable YAML mapping"),
    ],
)
def test_a_wrong_mapping_is_refused_naming_the_problem(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "mapping.yml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        load_mapping(path, intents={"complain"}, categories={"payment_billing"})
