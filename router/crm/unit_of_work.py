"""Unit of work: one database transaction around one use case, committed only when asked."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

_Self = TypeVar("_Self", bound="UnitOfWork")


class UnitOfWork:
    """``with uow: ...; uow.commit()`` — anything not committed is rolled back on exit."""

    session: Session

    def __init__(self, session_factory: sessionmaker) -> None:
        self._session_factory = session_factory

    def __enter__(self: _Self) -> _Self:
        self.session = self._session_factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.session.rollback()
        self.session.close()

    def commit(self) -> None:
        """Make the use case's changes durable."""
        self.session.commit()

    def rollback(self) -> None:
        """Drop what the use case changed so far."""
        self.session.rollback()


class ReadOnlyUnitOfWork(UnitOfWork):
    """``with reader: ...`` for queries only: committing is a programming error, so it refuses."""

    def commit(self) -> None:
        """Refuse: a read-only use case that writes would bypass SQLite's single-writer lock."""
        raise RuntimeError("a read-only unit of work cannot commit; use kefu.uow() to change data")
