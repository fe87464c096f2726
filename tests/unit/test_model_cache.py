"""The test model cache: a new key for any change to what a model is trained from, one build for parallel callers,
never half a model in the cache, and only a family's most recently used versions kept."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.support.model_cache import cached, fingerprint


def test_the_key_changes_with_any_input_file_or_extra_and_only_then(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "complaints.csv").write_text("text,category\n快递丢了,delivery\n", encoding="utf-8")
    (tmp_path / "train.py").write_text("EPOCHS = 3\n")
    inputs = ["data", "train.py"]
    key = fingerprint(inputs, ["numpy 1.23.5"], root=tmp_path)
    assert fingerprint(inputs, ["numpy 1.23.5"], root=tmp_path) == key
    assert fingerprint(inputs, ["numpy 1.24.0"], root=tmp_path) != key

    (tmp_path / "data" / "complaints.csv").write_text("text,category\n快递丢了,refund_return\n", encoding="utf-8")
    edited = fingerprint(inputs, ["numpy 1.23.5"], root=tmp_path)
    (tmp_path / "data" / "risk.csv").write_text("text,risk\n", encoding="utf-8")
    added = fingerprint(inputs, ["numpy 1.23.5"], root=tmp_path)
    (tmp_path / "train.py").write_text("EPOCHS = 4\n")
    assert len({key, edited, added, fingerprint(inputs, ["numpy 1.23.5"], root=tmp_path)}) == 4


def test_parallel_callers_wait_for_one_build_and_all_get_the_whole_model(tmp_path: Path) -> None:
    builds: list[Path] = []

    def slow_build(model: Path) -> None:
        builds.append(model)
        model.mkdir()
        (model / "classifier.joblib").write_text("weights")
        time.sleep(0.2)  # long enough for the other caller to arrive mid-build
        (model / "manifest.json").write_text("{}")

    got: list[Path] = []

    def call() -> None:
        got.append(cached("model", "k1", slow_build, tmp_path))

    callers = [threading.Thread(target=call) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert got == [tmp_path / "model-k1"] * 2
    assert len(builds) == 1 and builds[0] != tmp_path / "model-k1"  # built aside, then renamed into place
    assert sorted(path.name for path in (tmp_path / "model-k1").iterdir()) == ["classifier.joblib", "manifest.json"]


def test_a_failed_build_leaves_nothing_in_the_cache_and_the_next_caller_builds_again(tmp_path: Path) -> None:
    def killed_mid_build(model: Path) -> None:
        model.mkdir()
        (model / "classifier.joblib").write_text("weights")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached("model", "k1", killed_mid_build, tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == [".model-k1.lock"]

    model = cached("model", "k1", lambda model: model.write_text("weights"), tmp_path)
    assert model.read_text() == "weights"


def test_a_new_version_removes_its_familys_least_recently_used_beyond_two_and_nothing_else(tmp_path: Path) -> None:
    def write(model: Path) -> None:
        model.write_text("weights")

    def build(family: str, key: str) -> Path:
        return cached(family, key, write, tmp_path, suffix=".tar.gz")

    def in_cache() -> list[str]:
        return sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith("."))

    first = build("rasa", "k1")
    build("rasa-small", "k1")  # another family, whose name begins like this one's
    build("rasa", "k2")
    os.utime(first, (0, 0))  # k1 was used long ago ...
    build("rasa", "k1")  # ... and just now again, so k2 is now the least recently used
    build("rasa", "k3")
    assert in_cache() == ["rasa-k1.tar.gz", "rasa-k3.tar.gz", "rasa-small-k1.tar.gz"]
    assert not (tmp_path / ".rasa-k2.tar.gz.lock").exists()
