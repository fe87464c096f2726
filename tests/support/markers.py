"""The markers that keep `make check` fast: a helper that starts Rasa or chromium refuses a test not marked so.

The root conftest records the running test's markers in ``KEFU_TEST_MARKERS``; outside pytest (benchmarks) the
variable is absent and nothing is checked.
"""

from __future__ import annotations

import os

MARKERS_VARIABLE = "KEFU_TEST_MARKERS"


def require_marker(marker: str, what: str) -> None:
    """Fail when the running test lacks ``marker``: `-m "not rasa and not browser"` would otherwise run it."""
    markers = os.environ.get(MARKERS_VARIABLE)
    if markers is not None and marker not in markers.split(","):
        test = os.environ.get("PYTEST_CURRENT_TEST", "this test").split(" ")[0]
        raise RuntimeError(f"{test} {what} but is not marked @pytest.mark.{marker}: `make check` would run it")
