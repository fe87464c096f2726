"""Model directories: written whole into a temporary folder and renamed into place, with a format version."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import joblib

from router.errors import InvalidInput

# Bump when the stored objects change shape; older directories are then refused instead of misread.
# 2: the classifier's features are numpy n-gram tables (router.triage.ngrams), not sklearn vectorizers.
# 3: a risk model (router.triage.risk) beside the classifier; sentiment has a trained English model too.
FORMAT_VERSION = 3
MANIFEST = "manifest.json"


class IncompatibleModel(InvalidInput):
    """The directory is not a triage model this code can read."""


def save_model_dir(out_dir: Path, artifacts: dict[str, Any], info: dict[str, Any]) -> None:
    """Write ``artifacts`` (name → object) and a manifest so a reader never sees a half-written model."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, value in artifacts.items():
            joblib.dump(value, staging / f"{name}.joblib")
        manifest = {
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "artifacts": sorted(artifacts),
            **info,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        # The old model stays readable until the new one is complete; then two renames swap them.
        retired = out_dir.with_name(f".{out_dir.name}.old")
        if retired.exists():
            shutil.rmtree(retired)
        if out_dir.exists():
            out_dir.rename(retired)
        staging.rename(out_dir)
        shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The manifest of a model directory this code can read, or IncompatibleModel saying why not."""
    path = Path(model_dir) / MANIFEST
    if not path.is_file():
        raise IncompatibleModel(f"{model_dir} is not a triage model directory (no {MANIFEST}); train one first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IncompatibleModel(f"{path} is corrupt: {error}") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), list):
        raise IncompatibleModel(f"{path} is not a triage model manifest (no list of artifacts); retrain the model")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IncompatibleModel(
            f"{model_dir} holds triage model format {version!r}, this kefu reads format {FORMAT_VERSION}; retrain it"
        )
    return manifest


def load_artifact(model_dir: Path, name: str, expected: type | None = None) -> Any:
    """One stored object of a checked model directory (of type ``expected``, when given)."""
    manifest = read_manifest(model_dir)
    if name not in manifest["artifacts"]:
        raise IncompatibleModel(f"{model_dir} has no {name!r} model (it has {', '.join(manifest['artifacts'])})")
    path = Path(model_dir) / f"{name}.joblib"
    try:
        value = joblib.load(path)
    except Exception as error:
        # Truncated, edited, or pickled by code whose classes have since moved: unreadable, whatever the cause.
        raise IncompatibleModel(
            f"{path} cannot be read ({type(error).__name__}: {error}); retrain the model"
        ) from error
    if expected is not None and not isinstance(value, expected):
        raise IncompatibleModel(f"{path} holds a {type(value).__name__}, not a {expected.__name__}; retrain the model")
    return value
