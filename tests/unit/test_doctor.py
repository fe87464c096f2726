"""`kefu doctor`'s dependency check compares what is installed with requirements.lock."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from router.doctor import differences_from_lock
from router.settings import PROJECT_ROOT


def test_the_installed_environment_is_the_lock() -> None:
    assert differences_from_lock(PROJECT_ROOT / "requirements.lock") == []


def test_a_package_at_another_version_or_missing_is_named_with_both_versions(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    installed = metadata.version("argon2-cffi")
    lock.write_text(
        f"# a comment\nargon2-cffi==0.0.1\nalembic=={metadata.version('alembic')}\nno-such-package-kefu==1.0\n",
        encoding="utf-8",
    )
    assert differences_from_lock(lock) == [
        f"argon2-cffi {installed} (locked 0.0.1)",
        "no-such-package-kefu missing (locked 1.0)",
    ]
