"""CSV exports of every analysis table, so supervisors can take the numbers into their own tools.

Text cells are redacted on the way out as well as when stored: rows written before a kind of personal data was
recognised must not leave the building either.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from router.crm.redaction import redact

# Spreadsheet programs run cells that start with these as formulas: a customer's text must never do that.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: object) -> object:
    if not isinstance(value, str):
        return value
    value = redact(value)
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def to_csv(rows: Iterable[Mapping[str, object]]) -> str:
    """Rows as CSV with a header from the first row's keys; text cells redacted and neutralised against formulas."""
    rows = list(rows)
    buffer = io.StringIO()
    if not rows:
        return ""
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _safe(value) for key, value in row.items()})
    return buffer.getvalue()
