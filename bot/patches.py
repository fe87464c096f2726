"""The changes kefu makes inside Rasa, installed by one call when the Rasa server starts (``bot.server``).

Each patch replaces a Rasa internal that has no setting of its own: the action response check
(``bot.action_validation``), the graph runner the message processor loads models with (``bot.graph_runner``) and
the fail-safe wrapper that answers turns it could not store (``bot.tracker_store``). They copy or replace Rasa
3.6's code, so another Rasa version may have changed what they replace: ``install`` refuses to run on one until
the patches have been checked against it and ``RASA_SERIES`` moved on.
"""

from __future__ import annotations

from bot import action_validation, graph_runner, tracker_store

RASA_SERIES = "3.6"


class UnsupportedRasaVersion(RuntimeError):
    """Rasa is not the version kefu's patches were written for."""


def check_rasa_version(rasa_version: str) -> None:
    """Refuse any Rasa outside the ``RASA_SERIES`` series (3.6.0, 3.6.21, … pass; 3.7.0, 3.60.1 do not)."""
    if rasa_version.split(".")[:2] != RASA_SERIES.split("."):
        raise UnsupportedRasaVersion(
            f"kefu's Rasa patches were written for Rasa {RASA_SERIES}.x, this is Rasa {rasa_version!r}: check "
            "bot/action_validation.py, bot/graph_runner.py and bot/tracker_store.py against it, then change "
            "bot.patches.RASA_SERIES"
        )


def install(*, rasa_version: str) -> None:
    """Check the Rasa version, then patch Rasa (idempotent); nothing is patched when the version is refused."""
    check_rasa_version(rasa_version)
    action_validation.install()
    graph_runner.install()
    tracker_store.install()
