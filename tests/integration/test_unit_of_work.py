"""Units of work on a real CRM: a reader never queues behind SQLite's single writer, and cannot write."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.models import Customer


def _count_customers(kefu: Kefu) -> int:
    with kefu.reader() as reader:
        return reader.session.scalar(select(func.count()).select_from(Customer))


def test_a_reader_reads_the_committed_rows_while_a_writer_holds_the_lock(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        uow.session.add(Customer(display_name="committed"))
        uow.commit()
    counts: list[int] = []
    with kefu.uow() as writer:
        # BEGIN IMMEDIATE: this transaction holds SQLite's write lock until the block ends.
        writer.session.add(Customer(display_name="not yet committed"))
        writer.session.flush()
        reader_thread = threading.Thread(target=lambda: counts.append(_count_customers(kefu)))
        reader_thread.start()
        # A reader that also asked for the write lock would wait out the 30 s busy timeout here.
        reader_thread.join(timeout=10)
        assert not reader_thread.is_alive(), "the reader waited for the writer's lock"
        writer.commit()
    assert counts == [1]
    assert _count_customers(kefu) == 2


def test_a_reader_refuses_to_commit_and_leaves_nothing_behind(kefu_any_db: Kefu) -> None:
    with kefu_any_db.reader() as reader:
        reader.session.add(Customer(display_name="sneaked in"))
        with pytest.raises(RuntimeError, match="read-only"):
            reader.commit()
    assert _count_customers(kefu_any_db) == 0
