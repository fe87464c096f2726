"""Only a process's composition root reads the settings from the environment; everything else is handed them.

An AST scan of router/, bot/ and actions/ for every call of ``get_settings`` (and every import of it, so an alias
cannot hide a call), each checked against the composition roots below.
"""

from __future__ import annotations

import ast
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("router", "bot", "actions")
ANY_FUNCTION = "*"
# Module (or module pattern) -> the functions in it that may read the environment's settings.
COMPOSITION_ROOTS = {
    # CLI commands: each `kefu …` invocation is a process of its own.
    "router/cli.py": ANY_FUNCTION,
    "router/*/cli.py": ANY_FUNCTION,
    "router/cli_common.py": {"settings_or_exit"},  # what every one of them starts from
    # Process entrypoints.
    "bot/server.py": ANY_FUNCTION,
    "bot/action_server.py": ANY_FUNCTION,
    "router/web/app.py": {"create_app"},
    "router/migrations/env.py": ANY_FUNCTION,  # Alembic runs it as a script
    # What Rasa and rasa-sdk construct themselves, from endpoints.yml, credentials.yml or the actions package,
    # with no way to pass kefu's settings in.
    "bot/channels/*.py": {"from_credentials"},
    "bot/event_broker.py": {"from_endpoint_config"},
    "actions/runtime.py": {"process_kefu"},
    # Where it is defined.
    "router/settings.py": set(),
}


def settings_reads(source: str) -> list[tuple[int, str, bool]]:
    """``(line, enclosing function or "<module>", whether an import)`` of each call or import of ``get_settings``."""
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if isinstance(child, ast.ImportFrom) and any(alias.name == "get_settings" for alias in child.names):
                found.append((child.lineno, function, True))
            if isinstance(child, ast.Call) and _name(child.func) == "get_settings":
                found.append((child.lineno, function, False))
            visit(child, function)

    visit(ast.parse(source), "<module>")
    return found


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _allowed_functions(module: str) -> set[str] | str | None:
    matches = [functions for pattern, functions in COMPOSITION_ROOTS.items() if Path(module).match(pattern)]
    if not matches:
        return None
    return ANY_FUNCTION if ANY_FUNCTION in matches else set().union(*matches)


def reads_outside_roots(root: Path) -> list[str]:
    """``module:line in function`` for every settings read that is not in a composition root."""
    outside = []
    for path in sorted(path for package in PACKAGES for path in (root / package).rglob("*.py")):
        module = path.relative_to(root).as_posix()
        allowed = _allowed_functions(module)
        for line, function, is_import in settings_reads(path.read_text(encoding="utf-8")):
            # The import that brings get_settings into a root module is part of that root.
            if allowed == ANY_FUNCTION or (allowed is not None and (is_import or function in allowed)):
                continue
            outside.append(f"{module}:{line} in {function}")
    return outside


def test_only_composition_roots_read_the_settings() -> None:
    assert reads_outside_roots(PROJECT_ROOT) == []


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_a_service_that_reads_the_settings_itself_is_reported(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "router/routing/policy.py": (
                "from router.settings import get_settings\n\n"
                "def routing_policy(data_dir=None):\n"
                "    return data_dir or get_settings().data_dir\n"
            ),
            "router/triage/cli.py": "from router.settings import get_settings\n\ndef train():\n    get_settings()\n",
        },
    )

    assert reads_outside_roots(root) == [
        "router/routing/policy.py:1 in <module>",
        "router/routing/policy.py:4 in routing_policy",
    ]


def test_a_root_module_may_read_them_only_in_its_root_function(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "bot/channels/chat.py": (
                "import router.settings as s\n\n"
                "class Chat:\n"
                "    @classmethod\n"
                "    def from_credentials(cls, credentials):\n"
                "        return cls(s.get_settings())\n\n"
                "    def reply(self):\n"
                "        return s.get_settings().rasa_token\n"
            ),
        },
    )

    assert reads_outside_roots(root) == ["bot/channels/chat.py:9 in reply"]
