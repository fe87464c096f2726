"""No function, class or constant that nothing uses: a cheap stand-in for vulture over router/, bot/ and actions/.

A name counts as used when it appears anywhere else in the project's code, templates or configuration (Rasa and
FastAPI find some things by name: decorated functions are skipped, the framework calls them).
"""

from __future__ import annotations

import ast
import re
from collections import Counter

from router.settings import PROJECT_ROOT

PACKAGES = ("router", "bot", "actions")
READ_FOR_USES = ("router", "bot", "actions", "benchmarks", "scripts", "tests", "data")
SUFFIXES = {".py", ".html", ".js", ".yml", ".yaml", ".toml", ".mako"}
EXTRA_FILES = ("pyproject.toml", "Procfile", "Makefile", "config.yml", "domain.yml", "endpoints.yml", "credentials.yml")


def _identifier_counts() -> Counter[str]:
    paths = [path for folder in READ_FOR_USES for path in (PROJECT_ROOT / folder).rglob("*") if path.suffix in SUFFIXES]
    paths += [PROJECT_ROOT / name for name in EXTRA_FILES]
    counts: Counter[str] = Counter()
    for path in paths:
        if path.is_file():
            counts.update(re.findall(r"[A-Za-z_]\w*", path.read_text(encoding="utf-8", errors="replace")))
    return counts


def _top_level_names(source: str) -> list[str]:
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and not node.decorator_list:
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [target.id for target in targets if isinstance(target, ast.Name)]
    return [name for name in names if not name.startswith("__")]


def test_every_top_level_definition_is_used_somewhere() -> None:
    uses = _identifier_counts()
    unused = []
    for package in PACKAGES:
        for module in sorted((PROJECT_ROOT / package).rglob("*.py")):
            if "migrations" in module.parts:
                continue  # Alembic reads revision variables by name
            for name in _top_level_names(module.read_text(encoding="utf-8")):
                if uses[name] < 2:
                    unused.append(f"{module.relative_to(PROJECT_ROOT)}: {name}")
    assert unused == [], "defined but never used (delete it, or use it):\n" + "\n".join(unused)
