"""Triage models for tests: a small but real one (tests.support.triage_training) and the shipped default one.

Each is trained once, in a fresh process, and kept in models/test-cache/ under a hash of everything it is trained
from (tests.support.model_cache); every caller gets its own copy, so no test can change the cached model.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from tests.support.model_cache import PROJECT_ROOT, cached, fingerprint

SMALL, DEFAULT = "small", "default"
# Everything in the project the models are trained from, code included. The training process fails if it reads a
# project file that is not here: a change to that file would not give a new model.
TRAINING_INPUTS = (
    "domain.yml",
    "data/nlu",
    "data/public",
    "data/triage",
    "router/__init__.py",
    "router/errors.py",
    "router/public_data",
    "router/training/__init__.py",
    "router/training/nlu_yaml.py",
    "router/triage",
    "tests/support/__init__.py",
    "tests/support/model_cache.py",
    "tests/support/triage.py",
    "tests/support/triage_training.py",
)
# The libraries that read the data, compute the models and store them: a new version may train a different model.
TRAINING_LIBRARIES = ("jieba", "joblib", "numpy", "pandas", "PyYAML", "scikit-learn", "scipy", "vaderSentiment")
# The shared data set the default model learns from when given one (router.triage.training.ZH_SHOPPING).
SHARED_TRAINING_DATA = "zh_shopping"


def small_triage_model(out_dir: Path) -> Path:
    """A copy at ``out_dir`` of the small triage model: a few labelled complaints, with the shipped risk examples."""
    shutil.copytree(_cached_model(SMALL, None), out_dir)
    return out_dir


def default_triage_model(out_dir: Path, shared_data_dir: Path | None = None) -> Path:
    """A copy at ``out_dir`` of the default model trained from data/: its Chinese sentiment from the zh_shopping reviews
    in ``shared_data_dir`` when given and present, else from our own set alone (quick to train)."""
    shutil.copytree(_cached_model(DEFAULT, shared_data_dir), out_dir)
    return out_dir


def _cached_model(kind: str, shared_data_dir: Path | None) -> Path:
    versions = [f"{name} {metadata.version(name)}" for name in TRAINING_LIBRARIES]
    shared_data = fingerprint([SHARED_TRAINING_DATA], root=shared_data_dir) if shared_data_dir else "no shared data"
    key = fingerprint(TRAINING_INPUTS, [kind, sys.version, *versions, shared_data])
    family = f"triage-{kind}-with-shared-reviews" if shared_data_dir else f"triage-{kind}"
    return cached(family, key, lambda model: _train_in_fresh_process(kind, model, shared_data_dir))


def _train_in_fresh_process(kind: str, out_dir: Path, shared_data_dir: Path | None) -> None:
    # A test process that loaded the Rasa model has data/jieba's words in the jieba the triage model splits Chinese
    # with: the cached model must be the one a fresh process trains. (Importing the training code here would also
    # cost every test process seconds of scikit-learn.)
    command = [sys.executable, "-m", "tests.support.triage_training", kind, str(out_dir)]
    command += [str(shared_data_dir)] if shared_data_dir else []
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"training the {kind} triage model failed ({result.returncode}):\n{result.stderr[-4000:]}")
