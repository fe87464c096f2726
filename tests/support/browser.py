"""Headless Debian chromium for browser tests, and logging in through the form the way a person does."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.crm import DEMO_PASSWORD

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def log_in(page, base_url: str, username: str, password: str = DEMO_PASSWORD) -> None:
    """Log ``username`` into the console through the login form, the way a person does."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console.*"))
