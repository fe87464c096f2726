"""PII redaction: phone numbers, emails, ID, passport and card numbers and street addresses are never stored.

Regexes rather than a statistical model: these identifiers have fixed shapes (and checksums), no model may be
downloaded here, and Chinese text has no spaces, so lookarounds on digits do what word boundaries cannot. Each
shape is chosen so that the order numbers (5–20 digits) and ticket numbers (T + 6 digits) the assistant needs are
left alone; where a shape is too common to take on sight (a 9-digit passport, a ZIP code), only a labelled one is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum
from functools import partial
from typing import Any


class PiiKind(str, Enum):
    email = "email"
    id_number = "id_number"
    passport = "passport"
    card = "card"
    phone = "phone"
    address = "address"
    postcode = "postcode"


PLACEHOLDERS = {
    PiiKind.email: "[email]",
    PiiKind.id_number: "[id]",
    PiiKind.passport: "[passport]",
    PiiKind.card: "[card]",
    PiiKind.phone: "[phone]",
    PiiKind.address: "[address]",
    PiiKind.postcode: "[postcode]",
}

# Entities whose whole value is personal data, so the stored entity list must not keep it either.
PII_ENTITIES = {"phone": PiiKind.phone, "email": PiiKind.email}

_NOT_DIGIT_BEFORE = r"(?<!\d)"
_NOT_DIGIT_AFTER = r"(?!\d)"
_NOT_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_NOT_ALNUM_AFTER = r"(?![A-Za-z0-9])"

# Chinese keyboards type full-width digits, letters and signs; fold them one character for one so offsets hold.
_FULLWIDTH_FOLD = str.maketrans(
    {
        **{chr(0xFF10 + digit): str(digit) for digit in range(10)},
        **{chr(0xFF21 + letter): chr(0x41 + letter) for letter in range(26)},
        **{chr(0xFF41 + letter): chr(0x61 + letter) for letter in range(26)},
        "＋": "+",
        "－": "-",
        "（": "(",
        "）": ")",
        "＠": "@",
        "＃": "#",
        "\u3000": " ",
    }
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}", re.ASCII)
# Mainland resident ID (GB 11643-1999): province, region, birth date, 3-digit sequence, check digit; the 15-digit
# ID issued until 2004 has a 2-digit birth year (19YY) and no check digit.
_CN_ID_18 = re.compile(_NOT_DIGIT_BEFORE + r"(\d{2})\d{4}(\d{4})(\d{2})(\d{2})\d{3}[\dXx]" + _NOT_DIGIT_AFTER)
_CN_ID_15 = re.compile(_NOT_DIGIT_BEFORE + r"(\d{2})\d{4}(\d{2})(\d{2})(\d{2})\d{3}" + _NOT_DIGIT_AFTER)
_CN_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54}
    | {61, 62, 63, 64, 65, 71, 81, 82}
)
# Chinese ordinary passports: E or G and 8 digits, or (since 2017) E, a letter other than I or O, and 7 digits.
# Taken on sight, unlabelled: an order reference of that very shape ("E20231123") is redacted as one too.
_CN_PASSPORT = re.compile(
    _NOT_ALNUM_BEFORE + r"(?:[EG]\d{8}|E[A-HJ-NP-Z]\d{7})" + _NOT_ALNUM_AFTER, re.IGNORECASE | re.ASCII
)
# Other countries' passports (9 digits in the US and UK, a letter or two and 6–8 digits elsewhere) look like order
# numbers: only a number the customer calls a passport number is one.
_LABELLED_PASSPORT = re.compile(
    r"(?:passport|护照)(?:\s*(?:number|num|no\.?|#|号码|号|编号|is|was|:|：|是|为))*\s*"
    r"(?P<pii>(?<![A-Za-z0-9])[A-Z]{0,2}\d{6,9}[A-Z]?)" + _NOT_ALNUM_AFTER,
    re.IGNORECASE,
)
# Digits in groups joined by single spaces or dashes, as card numbers are printed: "4111 1111 1111 1111".
_DIGIT_GROUPS = re.compile(_NOT_DIGIT_BEFORE + r"\d+(?:[ \-]\d+)*" + _NOT_DIGIT_AFTER)
# Payment cards have 13–19 digits and ISO/IEC 7812 major industry 2–6 (Mastercard 2221–2720, Amex, JCB, Diners,
# Visa, Mastercard, Discover, UnionPay): order numbers that start with a date (20…) or 1, 7, 8, 9 are not cards
# even when their last digit happens to fit Luhn.
_CARD_PREFIX = re.compile(r"[3-6]|2[2-7]")
MIN_CARD_DIGITS, MAX_CARD_DIGITS = 13, 19
# Chinese mobile, optionally +86 / 0086 / 86 and grouped 3-4-4.
_CN_MOBILE = re.compile(_NOT_DIGIT_BEFORE + r"(?:(?:\+|00)?86[ \-]?)?1[3-9]\d(?:[ \-]?\d{4}){2}" + _NOT_DIGIT_AFTER)
# International with a leading + and digits in groups, an area code in brackets only after the country code
# ("+44 (0)20 7946 0958"; a later bracket starts another number). The + makes it a phone before anything else.
_INTERNATIONAL_PHONE = re.compile(r"\+\d{1,3}(?:[ \-.]?\(\d{1,4}\))?(?:[ \-.]?\d{1,4}){2,5}" + _NOT_DIGIT_AFTER)
_OTHER_PHONES = (
    # Chinese landline with area code: 010-12345678, (0755) 1234 5678.
    re.compile(_NOT_DIGIT_BEFORE + r"(?:\(0\d{2,3}\)|0\d{2,3})[ \-]?\d{3,4}[ \-]?\d{4}" + _NOT_DIGIT_AFTER),
    # North American style: (555) 123-4567, 555-123-4567, 555.123.4567.
    re.compile(_NOT_DIGIT_BEFORE + r"(?:\(\d{3}\)\s?|\d{3}[\-.\s])\d{3}[\-.\s]\d{4}" + _NOT_DIGIT_AFTER),
)

# A Chinese place name: Han characters other than the pronouns, verbs and particles that lead into an address
# ("我住在", "寄到", "地址是"), so "请寄到北京市朝阳区建国路88号" loses the address and keeps the request.
_CN_LEAD_IN_CHARS = "我你您他她它们在是的了到往寄送住于从给把被和与或及请帮址为就都也还要想能会说改换填写发收至去来逛"
_CN_PLACE_CHAR = rf"(?:(?![{_CN_LEAD_IN_CHARS}])[\u4e00-\u9fff])"
_CN_NUMBER = r"\d+(?:-\d+)?"
# Building, unit, floor and room after the house number: SOHO现代城5号楼2单元1203室, 3栋501, B座12层.
_CN_UNITS = (
    rf"(?:(?:{_CN_PLACE_CHAR}|[A-Za-z]){{0,10}}?\s*[\dA-Za-z]+(?:-\d+)?\s*(?:号楼|栋|幢|座|单元|楼|层|室|房|号|户))*"
)
_CN_ADDRESSES = (
    # Province, city and district (optional), a street, lane and house number: 广东省深圳市南山区科技园南路15号,
    # 上海市浦东新区张江路100弄3号.
    re.compile(
        rf"{_CN_PLACE_CHAR}{{2,16}}?(?:路|街|大道|大街|巷|弄|胡同)\s*{_CN_NUMBER}\s*(?:弄\s*{_CN_NUMBER}\s*)?号"
        + _CN_UNITS
    ),
    # A housing estate's building: 阳光小区5栋2单元301室.
    re.compile(
        rf"{_CN_PLACE_CHAR}{{1,12}}?(?:小区|花园|公寓|大厦|新村|家园|社区|苑|广场)\s*[\dA-Za-z]+\s*"
        rf"(?:号楼|栋|幢|座){_CN_UNITS}"
    ),
    # Building and unit or room with no name: 3栋2单元501室.
    re.compile(_NOT_DIGIT_BEFORE + rf"{_CN_NUMBER}\s*(?:号楼|栋|幢)\s*\d+\s*(?:单元|层|楼)\s*(?:\d+\s*(?:室|号|房)?)?"),
)

_EN_STREET_TYPES = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Place|Pl|Way|Close|Crescent|"
    r"Terrace|Square|Sq|Parkway|Pkwy|Highway|Hwy|Row|Mews|Gardens)"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}"
_US_ZIP = r"\d{5}(?:-\d{4})?"
# What may follow the street: NW, "Apt 4B", and a town or city only together with its state and ZIP or postcode.
_EN_ADDRESS_TAIL = (
    r"(?:[ \t]+(?:NW|NE|SW|SE))?"
    r"(?:,?[ \t]+(?:Apt|Apartment|Unit|Suite|Ste|Flat|Floor|Fl|Room|Rm)\.?[ \t]*#?[ \t]*[\dA-Za-z\-]+)?"
    rf"(?:,[ \t]*(?:[A-Z][A-Za-z]+,?[ \t]+){{0,3}}(?:[A-Z]{{2}}[ \t]+{_US_ZIP}|{_UK_POSTCODE})(?![A-Za-z0-9]))?"
)
_EN_HOUSE_NUMBER = r"(?<![\w\-.])\d{1,5}[A-Za-z]?"
# A house number, one to four capitalised words and a street type: 221B Baker Street, 1600 Pennsylvania Avenue NW.
_EN_ADDRESS = re.compile(
    rf"{_EN_HOUSE_NUMBER}(?:[ \t]+[A-Z][A-Za-z'\-]*\.?){{1,4}}?[ \t]+(?i:{_EN_STREET_TYPES})\b\.?{_EN_ADDRESS_TAIL}"
)
# After "address", "I live at", "ship to": the same in any case ("12 main st"), words such as "the" excepted.
_EN_ADDRESS_LEAD_IN = (
    r"(?:address|addr\.?|live at|living at|lives at|located at|"
    r"(?:ship|deliver|send|mail|post|bring)(?:ed|ing|ped|ping)?(?:[ \t]+(?:it|them|this|that))?[ \t]+to)"
)
_EN_STOP_WORDS = r"(?:the|a|an|on|in|at|to|for|of|my|your|by|and|or|is|was|it|this|that|from|with)"
_LABELLED_EN_ADDRESS = re.compile(
    rf"{_EN_ADDRESS_LEAD_IN}[ \t]*(?:is[ \t]+)?[:：]?[ \t]*"
    rf"(?P<pii>{_EN_HOUSE_NUMBER}(?:[ \t]+(?!{_EN_STOP_WORDS}\b)[A-Za-z][A-Za-z'\-]*\.?){{1,4}}?"
    rf"[ \t]+{_EN_STREET_TYPES}\b\.?{_EN_ADDRESS_TAIL})",
    re.IGNORECASE,
)
# Postcodes are taken only where the customer says so: a bare 5- or 6-digit number is more often an order number.
_LABELLED_POSTCODE = re.compile(
    r"(?:post[ \t]?code|postal[ \t]+code|zip(?:[ \t]?code)?|邮编|邮政编码)(?:[ \t]*(?:is|:|：|是|为))*[ \t]*"
    rf"(?P<pii>(?<![A-Za-z0-9])(?:{_UK_POSTCODE}|{_US_ZIP}|\d{{6}}))" + _NOT_ALNUM_AFTER,
    re.IGNORECASE,
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


def _born_on_a_real_date(year: int, month: int, day: int) -> bool:
    try:
        born = date(year, month, day)
    except ValueError:
        return False
    return 1900 <= born.year <= date.today().year


def _is_cn_id(match: re.Match[str], century: int) -> bool:
    # A province code and a real birth date rule out most long order numbers; the check digit is not required
    # because a mistyped ID is still someone's ID.
    province, year, month, day = (int(group) for group in match.groups())
    return province in _CN_PROVINCES and _born_on_a_real_date(century + year, month, day)


def _card_spans(text: str) -> Iterator[tuple[int, int]]:
    """The longest card number starting at each group of digits: one may follow another number ("电话 5551234 4111
    1111 …"), so every start is tried, and the caller keeps the first of those that overlap."""
    for run in _DIGIT_GROUPS.finditer(text):
        groups = [(group.start() + run.start(), group.end() + run.start()) for group in re.finditer(r"\d+", run[0])]
        for first, (start, _) in enumerate(groups):
            if not _CARD_PREFIX.match(text, start):
                continue
            digits, longest = "", None
            for group_start, group_end in groups[first:]:
                digits += text[group_start:group_end]
                if len(digits) > MAX_CARD_DIGITS:
                    break
                if len(digits) >= MIN_CARD_DIGITS and luhn_valid(digits):
                    longest = group_end
            if longest is not None:
                yield start, longest


def _spans(pattern: re.Pattern[str], text: str) -> Iterator[tuple[int, int]]:
    """Where ``pattern`` finds personal data: its ``pii`` group when it has one (the label stays), else all of it."""
    group = "pii" if "pii" in pattern.groupindex else 0
    for match in pattern.finditer(text):
        yield match.span(group)


def _cn_id_spans(pattern: re.Pattern[str], century: int, text: str) -> Iterator[tuple[int, int]]:
    for match in pattern.finditer(text):
        if _is_cn_id(match, century):
            yield match.span()


# Most specific shapes first: a labelled passport number is not taken for anything else, a number starting with +
# is a phone and not a card, a card is not half-eaten as a landline.
_FINDERS: tuple[tuple[PiiKind, Callable[[str], Iterable[tuple[int, int]]]], ...] = (
    (PiiKind.email, partial(_spans, _EMAIL)),
    (PiiKind.passport, partial(_spans, _LABELLED_PASSPORT)),
    (PiiKind.id_number, partial(_cn_id_spans, _CN_ID_18, 0)),
    (PiiKind.id_number, partial(_cn_id_spans, _CN_ID_15, 1900)),
    (PiiKind.passport, partial(_spans, _CN_PASSPORT)),
    (PiiKind.phone, partial(_spans, _CN_MOBILE)),
    (PiiKind.phone, partial(_spans, _INTERNATIONAL_PHONE)),
    (PiiKind.card, _card_spans),
    *((PiiKind.phone, partial(_spans, pattern)) for pattern in _OTHER_PHONES),
    *((PiiKind.address, partial(_spans, pattern)) for pattern in (*_CN_ADDRESSES, _LABELLED_EN_ADDRESS, _EN_ADDRESS)),
    (PiiKind.postcode, partial(_spans, _LABELLED_POSTCODE)),
)
# What a found piece becomes for the finders after it: no pattern matches it, and like the placeholder it will be,
# it is no digit, so a number right after it is seen as the placeholder's neighbour would be.
_TAKEN = "\0"


_DIGIT_OR_AT = re.compile(r"[\d@]")
# Personal data already found elsewhere in a conversation, by value: the customer's "passport E73920418" makes the
# bot's "is this about order 73920418?" personal data too, though that sentence alone does not show it.
KnownPii = Mapping[str, PiiKind]
MIN_KNOWN_DIGITS = 6


def known_pii(text: str) -> dict[str, PiiKind]:
    """The personal data in ``text`` by value, with the digits of each number alone ("E73920418" → "73920418")."""
    known: dict[str, PiiKind] = {}
    for match in find_pii(text):
        known[match.value] = match.kind
        digits = re.sub(r"\D", "", match.value.translate(_FULLWIDTH_FOLD))
        if len(digits) >= MIN_KNOWN_DIGITS:
            known.setdefault(digits, match.kind)
    return known


def _known_finders(known: KnownPii) -> Iterator[tuple[PiiKind, Callable[[str], Iterable[tuple[int, int]]]]]:
    # Longest first, so a whole value is replaced before the digits it contains; digits only where no digit touches.
    for value in sorted(known, key=len, reverse=True):
        pattern = re.compile(_NOT_DIGIT_BEFORE + re.escape(value.translate(_FULLWIDTH_FOLD)) + _NOT_DIGIT_AFTER)
        yield known[value], partial(_spans, pattern)


def find_pii(text: str, known: KnownPii | None = None) -> list[PiiMatch]:
    """Every non-overlapping piece of personal data in ``text``, left to right, ``known`` values included."""
    remaining = text.translate(_FULLWIDTH_FOLD)
    if not _DIGIT_OR_AT.search(remaining):
        return []  # every kind has a digit in it but the email, which has its @: most texts end here
    found: list[PiiMatch] = []
    for kind, finder in (*_FINDERS, *_known_finders(known or {})):
        for start, end in finder(remaining):
            if _TAKEN not in remaining[start:end]:
                remaining = remaining[:start] + _TAKEN * (end - start) + remaining[end:]
                found.append(PiiMatch(kind, start, end, text[start:end]))
    return sorted(found, key=lambda item: item.start)


def redact(text: str, known: KnownPii | None = None) -> str:
    """``text`` with each piece of personal data (and each ``known`` value) replaced by a placeholder: ``[phone]``."""
    pieces: list[str] = []
    cursor = 0
    for item in find_pii(text, known):
        pieces.append(text[cursor : item.start])
        pieces.append(PLACEHOLDERS[item.kind])
        cursor = item.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def redact_entities(entities: list[dict], known: KnownPii | None = None) -> list[dict]:
    """NLU entities safe to store: personal values replaced, any other value redacted in place.

    Pass the message's ``known_pii`` as ``known``: an order number the NLU found inside a passport number is only
    personal data in the light of the whole message.
    """
    cleaned = []
    for entity in entities:
        entity = dict(entity)
        name = entity.get("entity")
        value = entity.get("value")
        if name in PII_ENTITIES:
            entity["value"] = PLACEHOLDERS[PII_ENTITIES[name]]
        elif isinstance(value, str):
            entity["value"] = redact(value, known)
        cleaned.append(entity)
    return cleaned


def redact_json(value: Any, keep: frozenset[str] = frozenset(), known: KnownPii | None = None) -> Any:
    """A copy of a JSON-like ``value`` with every string in it redacted, except the values of the keys in ``keep``."""
    if isinstance(value, str):
        return redact(value, known)
    if isinstance(value, dict):
        return {key: item if key in keep else redact_json(item, keep, known) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(item, keep, known) for item in value]
    return value
