"""CSV exports of every analysis table, so supervisors can take the numbers into their own tools."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

# Spreadsheet programs run cells that start with these as formulas: a customer's text must never do that.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def to_csv(rows: Iterable[Mapping[str, object]]) -> str:
    """Rows as CSV text with a header from the first row's keys; text cells neutralised against formula injection."""
    rows = list(rows)
    buffer = io.StringIO()
    if not rows:
        return ""
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _safe(value) for key, value in row.items()})
    return buffer.getvalue()
