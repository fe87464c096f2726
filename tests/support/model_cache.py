"""Models trained for tests, kept across runs in models/test-cache/ under a hash of everything they are trained from.

Training is most of what a quick test run would otherwise spend its time on, and every pytest worker would repeat it.
"""

from __future__ import annotations

import fcntl
import hashlib
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL_CACHE_DIR = PROJECT_ROOT / "models" / "test-cache"


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


def cached(name: str, build: Callable[[Path], object], cache_dir: Path = MODEL_CACHE_DIR) -> Path:
    """``cache_dir / name``, made by ``build`` (given the path to create) if the cache lacks it.

    Parallel test processes wait for the one that builds it instead of building it again, and it is built beside
    the cache and renamed into place whole: no caller ever sees half a model, even one whose build was killed.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    model = cache_dir / name
    with (cache_dir / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not model.exists():
            with tempfile.TemporaryDirectory(prefix=f".{name}.", dir=cache_dir) as building:
                built = Path(building) / name
                build(built)
                built.rename(model)
    return model
