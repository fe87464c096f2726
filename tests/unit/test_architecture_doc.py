"""docs/architecture.md names every module of router/, bot/ and actions/, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("router", "bot", "actions")
# Alembic revisions are numbered scripts, not modules anyone imports: the folder's line describes them.
REVISIONS = "router/migrations/versions/"
_DESCRIBED = re.compile(r"^\s*- `([\w/.]+)` — \S")
_NAMED = re.compile(r"`((?:router|bot|actions)/[\w/.]*)`")


def code_paths(root: Path) -> set[str]:
    """Every module (``pkg/mod.py``) and package or folder holding modules (``pkg/sub/``) the doc must describe."""
    paths = set()
    for module in (path for package in PACKAGES for path in (root / package).rglob("*.py")):
        relative = module.relative_to(root).as_posix()
        folder = module.parent.relative_to(root).as_posix() + "/"
        if folder.startswith(REVISIONS):
            paths.add(REVISIONS)
            continue
        paths.add(folder)
        if module.name != "__init__.py":
            paths.add(relative)
    return paths


def undescribed(root: Path, doc: str) -> list[str]:
    """Modules and packages with no ``- `path` — what it holds`` line in the doc."""
    described = {match.group(1) for line in doc.splitlines() if (match := _DESCRIBED.match(line))}
    return sorted(code_paths(root) - described)


def named_but_missing(root: Path, doc: str) -> list[str]:
    """Paths under router/, bot/ or actions/ the doc names that are neither a file nor a folder."""
    return sorted({name for name in _NAMED.findall(doc) if not (root / name).exists()})


def test_every_module_is_described_and_every_named_module_exists() -> None:
    doc = (PROJECT_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")

    assert undescribed(PROJECT_ROOT, doc) == []
    assert named_but_missing(PROJECT_ROOT, doc) == []


def _project(root: Path, *files: str) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("", encoding="utf-8")
    return root


def test_a_new_module_the_doc_does_not_describe_is_reported(tmp_path: Path) -> None:
    root = _project(tmp_path, "router/__init__.py", "router/db.py", "router/crm/__init__.py", "router/crm/new.py")
    doc = "- `router/` — domain\n  - `router/db.py` — engine\n- `router/crm/` — the CRM\n  - `router/crm/new.py`\n"

    assert undescribed(root, doc) == ["router/crm/new.py"]  # named, but with no line on what it holds
    assert undescribed(root, doc.replace("`router/crm/new.py`", "`router/crm/new.py` — rows")) == []


def test_a_described_module_that_is_gone_is_reported(tmp_path: Path) -> None:
    root = _project(tmp_path, "bot/__init__.py", "bot/server.py")
    doc = "- `bot/` — Rasa side\n  - `bot/server.py` — server\n  - `bot/gone.py` — removed\n"

    assert undescribed(root, doc) == []
    assert named_but_missing(root, doc) == ["bot/gone.py"]


def test_revisions_are_described_by_their_folder(tmp_path: Path) -> None:
    root = _project(tmp_path, "router/__init__.py", "router/migrations/env.py", f"{REVISIONS}0001_initial.py")

    assert undescribed(root, "- `router/` — x\n") == ["router/migrations/", "router/migrations/env.py", REVISIONS]
