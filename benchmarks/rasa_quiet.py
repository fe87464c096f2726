"""Rasa inside a benchmark's own process: offline, and quiet enough that the report still ends with its JSON line."""

from __future__ import annotations

import logging
import os


def quiet_rasa() -> None:
    """Telemetry off, TensorFlow's C++ log and Rasa's per-parse log silenced; call before Rasa loads a model."""
    os.environ["RASA_TELEMETRY_ENABLED"] = "false"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    logging.disable(logging.WARNING)
