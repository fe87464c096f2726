"""The test suite's layout: shared helpers come from tests/support, and `make check` never meets Rasa or chromium."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from tests.support.markers import MARKERS_VARIABLE, require_marker

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> list[str]:
    """Every absolute module ``path`` imports (``from a.b import c`` counts as ``a.b.c`` too: c may be a module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return found


def wrong_test_imports(root: Path) -> list[str]:
    """Imports of a test module or a conftest from any Python file under ``root``'s tests/ and benchmarks/."""
    wrong = []
    for path in sorted([*(root / "tests").rglob("*.py"), *(root / "benchmarks").rglob("*.py")]):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "tests" and len(parts) > 1 and parts[1] != "support":
                wrong.append(f"{path.relative_to(root)} imports {module}")
    return sorted(set(wrong))


def test_no_test_module_or_conftest_is_imported_shared_helpers_come_from_tests_support() -> None:
    assert wrong_test_imports(PROJECT_ROOT) == []


def test_the_layout_check_finds_an_import_from_another_test_module_or_conftest(tmp_path: Path) -> None:
    (tmp_path / "tests" / "integration").mkdir(parents=True)
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "tests" / "integration" / "test_a.py").write_text(
        "from tests.unit.test_routing import make_team\nfrom tests.support.crm import make_kefu\n"
    )
    (tmp_path / "tests" / "integration" / "test_b.py").write_text("from tests.e2e import conftest\n")
    (tmp_path / "benchmarks" / "bench.py").write_text("import tests.conftest\n")
    assert wrong_test_imports(tmp_path) == [
        "benchmarks/bench.py imports tests.conftest",
        "tests/integration/test_a.py imports tests.unit.test_routing",
        "tests/integration/test_a.py imports tests.unit.test_routing.make_team",
        "tests/integration/test_b.py imports tests.e2e",
        "tests/integration/test_b.py imports tests.e2e.conftest",
    ]


def test_a_helper_that_starts_rasa_refuses_a_test_not_marked_rasa(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MARKERS_VARIABLE, "postgres,timeout")
    with pytest.raises(RuntimeError, match=r"starts Rasa but is not marked @pytest.mark.rasa"):
        require_marker("rasa", "starts Rasa")
    monkeypatch.setenv(MARKERS_VARIABLE, "browser,rasa")
    require_marker("rasa", "starts Rasa")  # marked: allowed
    monkeypatch.delenv(MARKERS_VARIABLE)
    require_marker("rasa", "starts Rasa")  # outside pytest (a benchmark): nothing to check


@pytest.mark.timeout(600)
def test_the_running_tests_markers_are_recorded_for_the_helpers() -> None:
    recorded = set(os.environ[MARKERS_VARIABLE].split(","))
    assert "timeout" in recorded and not recorded & {"rasa", "browser"}
