"""Text normalisation and tokenisation that suit both Chinese and English, shared by every triage model."""

from __future__ import annotations

import logging
import re
import unicodedata

import jieba

from router.errors import InvalidInput

# Long enough for any real complaint; longer input is almost certainly a paste accident or an attack.
MAX_TEXT_CHARS = 20_000

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+|[a-z0-9]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")

jieba.setLogLevel(logging.WARNING)


def normalise(text: str) -> str:
    """Fold full-width forms and case so 'ＲＥＦＵＮＤ' and 'refund' are one feature."""
    return unicodedata.normalize("NFKC", text).lower()


def load_dictionary() -> None:
    """Load jieba's dictionary now (it loads lazily on first use), e.g. before forking workers that share it."""
    jieba.initialize()


def word_tokens(text: str) -> list[str]:
    """Words of already-normalised text: jieba words for Chinese runs, plain words for Latin script."""
    tokens: list[str] = []
    for run in _TOKEN.findall(text):
        if _CJK.match(run):
            tokens.extend(jieba.lcut(run, HMM=False))
        else:
            tokens.append(run)
    return tokens


def cjk_share(text: str) -> float:
    """Share of letters that are Chinese characters, to pick the sentiment model for mixed text."""
    letters = sum(1 for char in text if char.isalpha())
    return len(_CJK.findall(text)) / letters if letters else 0.0


def checked_text(text: object) -> str:
    """The text itself, or one clear InvalidInput saying why it cannot be triaged."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput("text is not UTF-8: it looks like binary data") from error
    if not isinstance(text, str):
        raise InvalidInput(f"text must be a string, not {type(text).__name__}")
    if "\x00" in text:
        raise InvalidInput("text contains NUL bytes: it looks like binary data")
    if not text.strip():
        raise InvalidInput("text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"text is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
    return text
