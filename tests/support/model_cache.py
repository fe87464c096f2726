"""Models trained for tests, kept across runs in models/test-cache/ under a hash of everything they are trained from.

Training is most of what a quick test run would otherwise spend its time on, and every pytest worker would repeat it.
Each family of models (the Rasa model, each kind of triage model) keeps its few most recently used versions, so that
switching branches back and forth does not train again, and a change to the training data does not leave another
model on disk for good.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL_CACHE_DIR = PROJECT_ROOT / "models" / "test-cache"
VERSIONS_KEPT = 2


def fingerprint(inputs: Iterable[str], extra: Iterable[str] = (), root: Path = PROJECT_ROOT) -> str:
    """Hash of every file under ``inputs`` (paths relative to ``root``) and of the ``extra`` strings (versions, say):
    equal fingerprints mean a model trained from them can be reused."""
    digest = hashlib.sha256()
    for name in inputs:
        path = root / name
        files = (
            sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if path.is_dir()
            else [path]
        )
        for file in files:
            if file.exists():
                digest.update(str(file.relative_to(root)).encode())
                digest.update(file.read_bytes())
    for text in extra:
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def cached(
    family: str, key: str, build: Callable[[Path], object], cache_dir: Path = MODEL_CACHE_DIR, suffix: str = ""
) -> Path:
    """``cache_dir / f"{family}-{key}{suffix}"``, made by ``build`` (given the path to create) if the cache lacks it.

    Parallel test processes wait for the one that builds it instead of building it again, and it is built beside
    the cache and renamed into place whole: no caller ever sees half a model, even one whose build was killed. A new
    build removes the family's versions beyond the ``VERSIONS_KEPT`` most recently used.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = f"{family}-{key}{suffix}"
    model = cache_dir / name
    with (cache_dir / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if model.exists():
            os.utime(model)
            return model
        with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=cache_dir) as building:
            built = Path(building) / name
            build(built)
            built.rename(model)
    _remove_least_recently_used(cache_dir, family, suffix)
    return model


def _remove_least_recently_used(cache_dir: Path, family: str, suffix: str) -> None:
    def is_version(path: Path) -> bool:
        key = path.name.removeprefix(f"{family}-").removesuffix(suffix)
        return path.name == f"{family}-{key}{suffix}" and key != "" and "-" not in key

    versions = sorted(filter(is_version, cache_dir.iterdir()), key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in versions[VERSIONS_KEPT:]:
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        (cache_dir / f".{stale.name}.lock").unlink(missing_ok=True)
