"""``python -m bot.server`` installs kefu's Rasa patches before Rasa's own command line runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.rasa_stack import PROJECT_ROOT, rasa_env

# The server's real start-up up to Rasa's argument parser, which prints ``rasa run``'s help and exits before serving.
START_AND_REPORT = """
import sys
from bot import server
sys.argv = ["bot.server", "--help"]
try:
    server.main()
except SystemExit as exit:
    assert exit.code == 0, exit.code
import rasa.core.processor
from rasa.core.actions.action import RemoteAction
print(rasa.core.processor.DaskGraphRunner.__name__, RemoteAction._validate_action_result.__module__)
"""


@pytest.mark.rasa  # runs Rasa's own command line, which loads all of Rasa and TensorFlow
def test_the_rasa_server_starts_with_the_patches_installed() -> None:
    started = subprocess.run(
        [sys.executable, "-c", START_AND_REPORT],
        cwd=PROJECT_ROOT,
        env=rasa_env(KEFU_RASA_TOKEN="a-token-for-this-test"),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert started.returncode == 0, started.stderr
    assert "--auth-token" in started.stdout  # Rasa's own parser ran, with kefu's arguments
    assert started.stdout.splitlines()[-1] == "SequentialGraphRunner bot.action_validation"
