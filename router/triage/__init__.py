"""Triage: complaint category, sentiment and an explainable urgency score → priority and SLA."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.triage.training import train_default_model
    from router.triage.triage import Assessment, Triage

__all__ = ["Assessment", "Triage", "train_default_model"]

# Loaded on first use: scikit-learn, jieba and VADER take seconds to import, and every `kefu` command imports
# this package (for the `kefu triage` sub-commands) whether or not it triages anything.
_HOMES = {
    "Assessment": "router.triage.triage",
    "Triage": "router.triage.triage",
    "train_default_model": "router.triage.training",
}


def __getattr__(name: str) -> Any:
    """The public names, imported from their modules when first asked for."""
    if name not in _HOMES:
        raise AttributeError(f"module 'router.triage' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
