"""``bootstrap()``: the one place that wires settings, the database and the services together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from router.accounts.secret_key import signing_key
from router.crm.passwords import Passwords
from router.crm.unit_of_work import ReadOnlyUnitOfWork, UnitOfWork
from router.db import build_engine, build_read_only_session_factory, build_session_factory
from router.settings import Settings

if TYPE_CHECKING:
    from router.training.hot_model import HotModel
    from router.triage import Triage


@dataclass
class Kefu:
    """What every entrypoint (web app, worker, actions, CLI) needs, built once per process."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker
    uow: Callable[[], UnitOfWork] = field(init=False)
    reader: Callable[[], ReadOnlyUnitOfWork] = field(init=False)

    def __post_init__(self) -> None:
        self.uow = partial(UnitOfWork, self.session_factory)
        self.reader = partial(ReadOnlyUnitOfWork, build_read_only_session_factory(self.engine))

    @cached_property
    def secret_key(self) -> str:
        """The key session cookies and API tokens are signed with (UnsafeSecretKey if it is not fit)."""
        return signing_key(self.settings)

    @cached_property
    def passwords(self) -> Passwords:
        """How console passwords are hashed and checked, at the cost the settings name."""
        return Passwords(self.settings.password_hash_profile)

    @cached_property
    def triage_model(self) -> HotModel[Triage]:
        """The registry's active complaint model, reloaded when an admin promotes another (loaded on first use)."""
        # Imported here: only the processes that file tickets load the complaint model and scikit-learn.
        from router.training.hot_model import HotModel
        from router.triage import Triage

        config_dir = self.settings.data_dir / "triage"
        return HotModel(self, "triage", lambda path: Triage.load(path, config_dir))

    def dispose(self) -> None:
        """Close the pool; tests and short-lived commands call this on the way out."""
        self.engine.dispose()


def bootstrap(settings: Settings) -> Kefu:
    """Build the process's kefu from ``settings``, which its composition root read (docs/architecture.md)."""
    engine = build_engine(settings.database_url)
    return Kefu(settings=settings, engine=engine, session_factory=build_session_factory(engine))
