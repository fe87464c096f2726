"""The `kefu` command as a person runs it (a child process), and the same app run in this process.

A child process costs ~0.7 CPU-seconds of imports, so each test runs a command once as a child process, the way an
operator meets it, and its further cases in-process with typer's ``CliRunner`` against the same app
(``router/cli.py``), with the same output and exit codes to assert on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from router.cli import app
from router.settings import get_settings

KEFU = (sys.executable, "-m", "router")
# The console script installed beside the interpreter: `kefu` exactly as an operator, the Makefile and the Procfile
# start it.
KEFU_SCRIPT = (str(Path(sys.executable).with_name("kefu")),)


def run_kefu(
    *args: str, env: dict[str, str], timeout: float = 120, kefu: tuple[str, ...] = KEFU
) -> subprocess.CompletedProcess[str]:
    """Run the real `kefu` CLI (``kefu``: how to start it) in a child process with ``env`` on top of ours."""
    return subprocess.run(
        [*kefu, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )


def invoke_kefu(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the `kefu` app in this process with ``env`` on top of ours; the result reads like :func:`run_kefu`'s.

    An exception the CLI let escape is written into ``stderr`` as the traceback a child process would print.
    """
    get_settings.cache_clear()  # the settings are read from the environment once per process
    try:
        with _console_width(env.get("COLUMNS")):
            result = CliRunner(mix_stderr=False).invoke(app, list(args), env=env)
    finally:
        get_settings.cache_clear()
    stderr = result.stderr
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess([*KEFU, *args], result.exit_code, result.stdout, stderr)


@contextmanager
def _console_width(columns: str | None) -> Iterator[None]:
    """The CLI's Rich consoles as wide as ``COLUMNS`` says, as a child process's would be.

    A Rich console takes its width from ``COLUMNS`` once, when it is made: in a pytest-xdist worker (``COLUMNS=80``)
    that is at import, so the width a test asks for must be set on the consoles themselves.
    """
    consoles = [
        value
        for name, module in list(sys.modules.items())
        if name.startswith("router")
        for value in vars(module).values()
        if isinstance(value, Console)
    ]
    widths = [console._width for console in consoles]  # None: follow COLUMNS and the terminal
    if columns is not None:
        for console in consoles:
            console.width = int(columns)
    try:
        yield
    finally:
        for console, width in zip(consoles, widths, strict=True):
            console._width = width
