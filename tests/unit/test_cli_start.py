"""The `kefu` command and the web app start without the libraries only training, analysis, Rasa and Telegram need.

Every `kefu user`, `kefu db` or `kefu doctor`, and every start of the web app, would otherwise spend seconds
importing scikit-learn and friends.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HEAVY_LIBRARIES = frozenset(
    {"sklearn", "pandas", "scipy", "numpy", "jieba", "tensorflow", "rasa", "rasa_sdk", "telegram"}
)


def top_level_modules_after(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running ``statement`` in the project."""
    probe = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    child = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return {name.split(".")[0] for name in child.stdout.split()}


# The analytics pages and the review inbox load these on their first request.
ANALYSIS_LIBRARIES = frozenset({"sklearn", "pandas", "scipy", "numpy", "jieba", "matplotlib", "gensim"})


def test_importing_the_kefu_command_loads_no_machine_learning_rasa_or_telegram_library() -> None:
    assert top_level_modules_after("import router.cli") & HEAVY_LIBRARIES == set()


def test_importing_the_web_app_loads_no_analysis_library_or_rasa() -> None:
    loaded = top_level_modules_after("import router.web.app")
    assert loaded & (ANALYSIS_LIBRARIES | {"tensorflow", "rasa", "rasa_sdk"}) == set()


def test_the_probe_sees_a_heavy_library_a_module_imports() -> None:
    assert "sklearn" in top_level_modules_after("import router.public_data.split as split; split.held_out_mask(['a'])")
