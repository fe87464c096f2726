"""Language detection, the bad-input guard, the unknown-text check and the cue lists decide how the bot answers."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.classifier import is_unknown_text
from bot.nlu.featurizers import MATCHED_PATTERNS, WeightedRegexFeaturizer
from bot.nlu.language import detect_language
from router.triage.bad_input import MAX_MESSAGE_CHARACTERS, bad_input_reason


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("你好", "zh"),
        ("我的快递到哪了", "zh"),
        ("hello", "en"),
        ("Where is my order?", "en"),
        ("我的order 12345 还没到", "zh"),
        ("帮我查下tracking number", "zh"),
        ("my 订单 hasn't arrived yet", "en"),
        ("こんにちは", "en"),
        ("Здравствуйте, где мой заказ", "en"),
        ("12345", None),
        ("😀🙏", None),
        ("", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


@given(st.text())
def test_detect_language_never_fails_and_only_says_zh_or_en(text: str) -> None:
    assert detect_language(text) in {"zh", "en", None}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("  \n\t", "empty"),
        (None, "empty"),
        ("投诉" * (MAX_MESSAGE_CHARACTERS // 2 + 1), "too_long"),
        ("😀😀😀", "no_words"),
        ("\x00\x01\x1b[31m\x1b[0m", "no_words"),
        ("?!…。", "no_words"),
        ("<script>alert(1)</script>", "markup"),
        ("<img src=x onerror=alert(1)>", "markup"),
        ("注文はどこですか", "other_language"),
        ("안녕하세요", "other_language"),
    ],
)
def test_bad_input_reason(text: str | None, reason: str) -> None:
    assert bad_input_reason(text) == reason


@pytest.mark.parametrize(
    "text", ["12345", "T000123", "5", "我要投诉", "where is my order", "I paid 5 < 10 dollars", "投诉" * 100]
)
def test_real_messages_are_not_bad_input(text: str) -> None:
    assert bad_input_reason(text) is None


CUES_FILE = Path(__file__).resolve().parents[2] / "data" / "nlu" / "cues.yml"
ENTITIES_FILE = CUES_FILE.with_name("entities.yml")
KNOWN_WORDS = {"where", "is", "my", "order", "hi", "订", "单", "过"}  # Chinese is known by character


@pytest.fixture(scope="module")
def featurize(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Message]:
    """The pipeline's jieba tokenizer and weighted regex featurizer, trained on data/nlu's regexes and cue lists."""
    storage = LocalModelStorage(tmp_path_factory.mktemp("regex"))
    context = ExecutionContext(GraphSchema({}), "test")
    tokenizer = JiebaTokenizer.create(JiebaTokenizer.get_default_config(), storage, Resource("jieba"), context)
    config = {**WeightedRegexFeaturizer.get_default_config(), "case_sensitive": False, "use_word_boundaries": False}
    featurizer = WeightedRegexFeaturizer.create(config, storage, Resource("regex"), context)
    featurizer.train(load_data(str(CUES_FILE)).merge(load_data(str(ENTITIES_FILE))))

    def run(text: str) -> Message:
        message = Message(data={TEXT: text})
        featurizer.process(tokenizer.process([message]))
        return message

    return run


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("hiya", "cue_greet"),
        ("你好", "cue_greet"),
        ("thx!", "cue_thanks"),
        ("谢谢", "cue_thanks"),
        ("nah", "cue_deny"),
        ("算啦", "cue_deny"),
    ],
)
def test_cue_matches_in_either_language_are_noted_on_the_message(
    featurize: Callable[[str], Message], text: str, cue: str
) -> None:
    assert cue in featurize(text).get(MATCHED_PATTERNS)


@pytest.mark.parametrize("text", ["不", "不用了", "不用了，谢谢", "没有啦", "不不不！", "算了吧", "不是这个"])
def test_a_short_chinese_no_is_a_deny_cue(featurize: Callable[[str], Message], text: str) -> None:
    assert "cue_deny" in featurize(text).get(MATCHED_PATTERNS)


@pytest.mark.parametrize(
    "text",
    [
        # Complaints that open with 不/没, as many of zh_shopping's reviews do (our own wording: it is unshippable).
        "不好用，用了两天就坏了",
        "不行老是自动重启",
        "不新鲜，下次不买了",
        "没收到货，客服也不回",
        "没用几天屏幕就花了",
    ],
)
def test_a_complaint_that_opens_with_no_is_not_a_deny_cue(featurize: Callable[[str], Message], text: str) -> None:
    assert "cue_deny" not in featurize(text).get(MATCHED_PATTERNS)


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("asdfgh qwerty", True),
        ("Wo ist meine Bestellung?", True),
        ("阿巴阿巴", True),
        ("where is it", False),
        ("hiya", False),  # no known word, but a greeting cue
        ("12345", False),
        ("我的订单", False),
        ("跳过", False),  # one unseen jieba word, but a known character
    ],
)
def test_only_text_without_one_known_word_or_cue_is_unknown(
    featurize: Callable[[str], Message], text: str, unknown: bool
) -> None:
    assert is_unknown_text(featurize(text), KNOWN_WORDS) is unknown


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        ("哔哩哔哩吧啦", True),  # every character is a sound syllable, and no pair of them was seen
        ("吧啦吧啦", True),
        ("啊啊啊啊", True),
        ("吧", False),  # a syllable alone is judged like any single character
        ("啦啦", False),  # a pair seen in training
        ("退吧", False),  # a character that means something alone
        ("送吧", True),  # ... but not one never seen
    ],
)
def test_sound_syllables_are_known_only_alone_or_in_a_pair_seen_in_training(
    featurize: Callable[[str], Message], text: str, unknown: bool
) -> None:
    # None of these texts matches a cue, which would make it known whatever its words.
    assert not featurize(text).get(MATCHED_PATTERNS)
    assert is_unknown_text(featurize(text), {"吧", "啦", "啊", "啦啦", "退"}) is unknown


def test_a_model_without_a_vocabulary_never_calls_text_unknown(featurize: Callable[[str], Message]) -> None:
    assert not is_unknown_text(featurize("asdfgh"), set())


def cue_patterns() -> dict[str, list[re.Pattern[str]]]:
    """The cue lists of data/nlu/cues.yml, compiled as the regex featurizer does (case-insensitive)."""
    entries = yaml.safe_load(CUES_FILE.read_text(encoding="utf-8"))["nlu"]
    return {
        entry["regex"]: [re.compile(line[2:], re.IGNORECASE) for line in entry["examples"].splitlines() if line]
        for entry in entries
    }


@pytest.mark.parametrize(
    ("cue", "text"),
    [
        ("cue_greet", "Hi there"),
        ("cue_goodbye", "886"),
        ("cue_thanks", "thx!"),
        ("cue_complain", "我要投诉"),
        ("cue_status", "where is my parcel"),
        ("cue_human", "转人工"),
        ("cue_chitchat", "你是机器人还是真人"),
        ("cue_off_topic", "what's the weather like"),
    ],
)
def test_cue_lists_fire_on_their_words(cue: str, text: str) -> None:
    assert any(pattern.search(text) for pattern in cue_patterns()[cue])


@pytest.mark.parametrize(
    ("cue", "text"),
    [
        ("cue_greet", "shipping this week"),
        ("cue_thanks", "quality is bad"),
        ("cue_goodbye", "order 18812345"),
        ("cue_human", "你是真人吗"),
    ],
)
def test_cue_words_do_not_fire_inside_other_words(cue: str, text: str) -> None:
    assert not any(pattern.search(text) for pattern in cue_patterns()[cue])
