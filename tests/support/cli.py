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

from typer.testing import CliRunner

from router.cli import app
from router.settings import get_settings

KEFU = [sys.executable, "-m", "router"]


def run_kefu(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `kefu` CLI in a child process with ``env`` on top of ours."""
    return subprocess.run(
        [*KEFU, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )


def invoke_kefu(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the `kefu` app in this process with ``env`` on top of ours; the result reads like :func:`run_kefu`'s.

    An exception the CLI let escape is written into ``stderr`` as the traceback a child process would print.
    """
    get_settings.cache_clear()  # the settings are read from the environment once per process
    try:
        result = CliRunner(mix_stderr=False).invoke(app, list(args), env=env)
    finally:
        get_settings.cache_clear()
    stderr = result.stderr
    if result.exc_info is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess([*KEFU, *args], result.exit_code, result.stdout, stderr)
