"""The time window every analysis is computed over.

No pandas here, so the web app's routes check a period without loading the analysis stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from router.crm.models import utcnow
from router.errors import InvalidInput

# A period longer than this is almost certainly a typo, and would read the whole log into memory.
MAX_PERIOD_DAYS = 3660


@dataclass(frozen=True)
class Period:
    """A half-open time window [start, end) every analysis is computed over."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidInput("period bounds must carry a time zone")
        if self.end <= self.start:
            raise InvalidInput("period end must be after its start")
        if self.end - self.start > timedelta(days=MAX_PERIOD_DAYS):
            raise InvalidInput(f"period is longer than {MAX_PERIOD_DAYS} days")

    @classmethod
    def last(cls, days: int, now: datetime | None = None) -> Period:
        """The ``days`` days up to now: the default window of every page."""
        if not 1 <= days <= MAX_PERIOD_DAYS:
            raise InvalidInput(f"days must be between 1 and {MAX_PERIOD_DAYS}")
        end = now or utcnow()
        return cls(end - timedelta(days=days), end)

    def previous(self) -> Period:
        """The window of the same length just before this one, to compare against."""
        return Period(self.start - (self.end - self.start), self.start)

    @property
    def label(self) -> str:
        """Human-readable dates for page titles and chart captions."""
        return f"{self.start:%Y-%m-%d} – {self.end:%Y-%m-%d}"
