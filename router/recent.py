"""A bounded memory of the most recently used entries, for caches that may forget (the database still knows)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

Value = TypeVar("Value")


class RecentlyUsed(OrderedDict[str, Value]):
    """A mapping that forgets its least recently kept entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def keep(self, key: str, value: Value) -> None:
        """Remember ``value`` as the newest entry for ``key``, forgetting the oldest beyond ``size``."""
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
