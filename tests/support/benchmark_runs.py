"""Benchmarks run inside the test process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence


def run_in_process(main: Callable[[Sequence[str]], None], argv: Sequence[str]) -> None:
    """``main(argv)``, then logging turned back on: a benchmark that loads Rasa silences logging for the rest of its
    process, which here is the test worker's, whose later tests read their logs (caplog)."""
    try:
        main(argv)
    finally:
        logging.disable(logging.NOTSET)
