"""Batch prediction spread over forked worker processes that share the parent's loaded model.

jieba segments in pure Python, so one process predicts Chinese at one core's speed. Forking after the model is
loaded gives each worker the model's arrays copy-on-write (nothing is pickled but the texts and the answers).
Fork is only safe in a process with no other threads (a forked child gets a copy of locks other threads may hold,
and none of those threads), so a threaded caller — the web app, Rasa's action server — must stay single-process;
this module refuses rather than risk a deadlock. Native thread pools are not counted as threads: OpenBLAS stops
its threads before a fork and restarts them on demand, and a worker's prediction (sparse products, numpy
element-wise maths, jieba) enters no BLAS or OpenMP code, so it never waits on a pool whose threads it lacks.
Workers only pay when each has a free core: on a busy machine they share one and gain nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from router.errors import InvalidInput
from router.triage.text import load_dictionary

if TYPE_CHECKING:
    from router.triage.classifier import Prediction, TriageClassifier

# Below this many texts a single process is faster: forking and collecting cost more than the split saves.
PARALLEL_FROM = 1000
# Each worker gets several chunks, so a worker that drew long texts does not leave the others idle at the end.
CHUNKS_PER_WORKER = 4

# The model a forked worker inherits from its parent; set only in the parent just before the workers fork.
_inherited: TriageClassifier | None = None


class WorkerFailed(RuntimeError):
    """A worker process died (killed, or out of memory) before answering."""


def cores() -> int:
    """Cores this process may run on (the container's or taskset's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def auto_workers(texts: int) -> int:
    """Workers worth forking for this many texts: every core for a big input, none for a small one."""
    return cores() if texts >= PARALLEL_FROM else 1


def can_fork() -> bool:
    """Whether forking is both possible here and safe (no other Python threads running)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _predict_inherited(texts: Sequence[str], first: int, explain: int) -> list[Prediction]:
    assert _inherited is not None, "only called in a worker forked by predict_chunks"
    return _inherited.predict(texts, explain=explain, first=first)


def predict_chunks(
    classifier: TriageClassifier, chunks: Iterable[Sequence[str]], workers: int, explain: int = 5
) -> Iterator[list[Prediction]]:
    """Each chunk's predictions in input order, computed by ``workers`` forked processes sharing ``classifier``.

    The chunks are consumed lazily (at most two per worker in flight), so a large file streams. An error in a
    worker (e.g. InvalidInput for a bad text) is raised here; a worker that dies raises WorkerFailed.
    """
    global _inherited
    if workers < 1:
        raise InvalidInput(f"workers must be at least 1, not {workers}")
    if workers == 1:
        first = 0
        for chunk in chunks:
            yield classifier.predict(chunk, explain=explain, first=first)
            first += len(chunk)
        return
    if not can_fork():
        raise InvalidInput(
            "workers > 1 needs a single-threaded process that can fork (not the web app or the action server); "
            "use workers=1 here"
        )
    # Loaded once in the parent, so workers share jieba's dictionary instead of each reading it again.
    load_dictionary()
    _inherited = classifier
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    try:
        pending, first = [], 0
        for chunk in chunks:
            pending.append(executor.submit(_predict_inherited, chunk, first, explain))
            first += len(chunk)
            while len(pending) > 2 * workers:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()
    except BrokenProcessPool as error:
        raise WorkerFailed("a triage worker process died (killed or out of memory); try fewer workers") from error
    finally:
        _inherited = None
        executor.shutdown(wait=True, cancel_futures=True)


def split(texts: Sequence[str], workers: int, most: int | None = None) -> list[Sequence[str]]:
    """Contiguous chunks of ``texts``, CHUNKS_PER_WORKER per worker (of at most ``most`` texts), in input order."""
    size = max(1, -(-len(texts) // (workers * CHUNKS_PER_WORKER)))
    if most is not None:
        size = min(size, most)
    return [texts[start : start + size] for start in range(0, len(texts), size)]
