"""A model that follows the registry: long-running processes (the action server) pick up promotions without restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from router.bootstrap import Kefu
from router.training import registry

Model = TypeVar("Model")
# How often the CRM is asked which version is active: cheap (one indexed row) and soon enough after a promotion.
DEFAULT_CHECK_SECONDS = 5.0


class HotModel(Generic[Model]):
    """``get()`` returns the loaded active model of ``kind``, reloading it when the CRM's active version changes.

    On a machine that did not train the active version it loads the copy unpacked from the model store. Before the
    first promotion (no CRM row) it loads the stable ``models/<kind>/active`` path if present.
    """

    def __init__(
        self,
        kefu: Kefu,
        kind: str,
        loader: Callable[[Path], Model],
        check_seconds: float = DEFAULT_CHECK_SECONDS,
    ) -> None:
        self._kefu = kefu
        self._kind = kind
        self._loader = loader
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._path: Path | None = None
        self._checked_at = float("-inf")

    @property
    def path(self) -> Path | None:
        """Where the loaded model came from (None before one was found)."""
        return self._path

    def _wanted_path(self) -> Path | None:
        models_dir = self._kefu.settings.models_dir
        active = registry.active_on_this_machine(self._kefu.reader, self._kind, models_dir)
        if active is not None:
            return active[0]
        fallback = registry.active_link(models_dir, self._kind)
        return fallback.resolve() if fallback.exists() else None

    def get(self) -> Model | None:
        """The active model, loaded once per version; None while no model has been trained."""
        if time.monotonic() - self._checked_at < self._check_seconds:
            return self._model
        with self._lock:
            wanted = self._wanted_path()
            self._checked_at = time.monotonic()
            if wanted is not None and wanted != self._path and wanted.exists():
                # Load before swapping: requests keep the old model until the new one is ready.
                self._model, self._path = self._loader(wanted), wanted
        return self._model
