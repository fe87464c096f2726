"""PII redaction: phone numbers, emails, Chinese ID numbers and card numbers never reach the interaction log.

Regexes rather than a statistical model: these identifiers have fixed shapes (and checksums), no model may be
downloaded here, and Chinese text has no spaces, so lookarounds on digits do what word boundaries cannot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import Enum


class PiiKind(str, Enum):
    email = "email"
    id_number = "id_number"
    card = "card"
    phone = "phone"


PLACEHOLDERS = {
    PiiKind.email: "[email]",
    PiiKind.id_number: "[id]",
    PiiKind.card: "[card]",
    PiiKind.phone: "[phone]",
}

# Entities whose whole value is personal data, so the stored entity list must not keep it either.
PII_ENTITIES = {"phone": PiiKind.phone, "email": PiiKind.email}

_NOT_DIGIT_BEFORE = r"(?<!\d)"
_NOT_DIGIT_AFTER = r"(?!\d)"

# Chinese keyboards type full-width digits and signs; fold them one character for one so offsets still hold.
_FULLWIDTH_FOLD = str.maketrans(
    {
        **{chr(0xFF10 + digit): str(digit) for digit in range(10)},
        "＋": "+",
        "－": "-",
        "（": "(",
        "）": ")",
        "＠": "@",
        "\u3000": " ",
    }
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", re.ASCII)
# Mainland resident ID: 6-digit region, birth date, 3-digit sequence, check digit (GB 11643-1999).
_CN_ID = re.compile(_NOT_DIGIT_BEFORE + r"([1-9]\d{5})(\d{4})(\d{2})(\d{2})\d{3}[\dXx]" + _NOT_DIGIT_AFTER)
# 13–19 digits, optionally grouped by single spaces or dashes as printed on cards.
_CARD = re.compile(_NOT_DIGIT_BEFORE + r"\d(?:[ \-]?\d){12,18}" + _NOT_DIGIT_AFTER)
# Chinese mobile, optionally +86 / 0086 / 86 and grouped 3-4-4.
_CN_MOBILE = re.compile(_NOT_DIGIT_BEFORE + r"(?:(?:\+|00)?86[ \-]?)?1[3-9]\d(?:[ \-]?\d{4}){2}" + _NOT_DIGIT_AFTER)
_OTHER_PHONES = (
    # Chinese landline with area code: 010-12345678, (0755) 1234 5678.
    re.compile(_NOT_DIGIT_BEFORE + r"(?:\(0\d{2,3}\)|0\d{2,3})[ \-]?\d{3,4}[ \-]?\d{4}" + _NOT_DIGIT_AFTER),
    # International with a leading + and 7–15 digits in groups.
    re.compile(r"\+\d{1,3}(?:[ \-.]?\(?\d{1,4}\)?){2,5}" + _NOT_DIGIT_AFTER),
    # North American style: (555) 123-4567, 555-123-4567, 555.123.4567.
    re.compile(_NOT_DIGIT_BEFORE + r"(?:\(\d{3}\)\s?|\d{3}[\-.\s])\d{3}[\-.\s]\d{4}" + _NOT_DIGIT_AFTER),
)


@dataclass(frozen=True)
class PiiMatch:
    """One piece of personal data found in a text, by character offsets."""

    kind: PiiKind
    start: int
    end: int
    value: str


def luhn_valid(digits: str) -> bool:
    """Card numbers carry a Luhn check digit; it separates them from long order numbers most of the time."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_cn_id(match: re.Match[str]) -> bool:
    # A real birth date rules out most 18-digit order numbers; the check digit is not required because a
    # mistyped ID is still someone's ID.
    year, month, day = int(match.group(2)), int(match.group(3)), int(match.group(4))
    try:
        born = date(year, month, day)
    except ValueError:
        return False
    return 1900 <= born.year <= date.today().year


def find_pii(text: str) -> list[PiiMatch]:
    """Every non-overlapping piece of personal data in ``text``, left to right."""
    folded = text.translate(_FULLWIDTH_FOLD)
    found: list[PiiMatch] = []
    taken: list[tuple[int, int]] = []

    def claim(kind: PiiKind, match: re.Match[str]) -> None:
        start, end = match.span()
        if any(start < other_end and other_start < end for other_start, other_end in taken):
            return
        taken.append((start, end))
        found.append(PiiMatch(kind, start, end, text[start:end]))

    # Most specific shapes first: a +86 mobile is not taken for a card, a card not half-eaten as a phone.
    for match in _EMAIL.finditer(folded):
        claim(PiiKind.email, match)
    for match in _CN_ID.finditer(folded):
        if _is_cn_id(match):
            claim(PiiKind.id_number, match)
    for match in _CN_MOBILE.finditer(folded):
        claim(PiiKind.phone, match)
    for match in _CARD.finditer(folded):
        if luhn_valid(re.sub(r"\D", "", match.group(0))):
            claim(PiiKind.card, match)
    for pattern in _OTHER_PHONES:
        for match in pattern.finditer(folded):
            claim(PiiKind.phone, match)
    return sorted(found, key=lambda item: item.start)


def redact(text: str) -> str:
    """``text`` with each piece of personal data replaced by a placeholder such as ``[phone]``."""
    pieces: list[str] = []
    cursor = 0
    for item in find_pii(text):
        pieces.append(text[cursor : item.start])
        pieces.append(PLACEHOLDERS[item.kind])
        cursor = item.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def redact_entities(entities: list[dict]) -> list[dict]:
    """NLU entities safe to store: personal values replaced, any other value redacted in place."""
    cleaned = []
    for entity in entities:
        entity = dict(entity)
        name = entity.get("entity")
        value = entity.get("value")
        if name in PII_ENTITIES:
            entity["value"] = PLACEHOLDERS[PII_ENTITIES[name]]
        elif isinstance(value, str):
            entity["value"] = redact(value)
        cleaned.append(entity)
    return cleaned
