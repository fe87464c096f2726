"""The real `kefu` command in a child process, as a person runs it."""

from __future__ import annotations

import os
import subprocess
import sys

KEFU = [sys.executable, "-m", "router"]


def run_kefu(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `kefu` CLI in a child process with ``env`` on top of ours."""
    return subprocess.run(
        [*KEFU, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )
