"""What a password guess costs the server, checked (argon2) and refused by the login throttle.

``python -m benchmarks.login_throttle --guesses 500 [--database-url URL]`` guesses wrong passwords at one account
through the same service ``POST /login`` and ``POST /api/tokens`` call (a fresh SQLite CRM unless a URL is given;
a PostgreSQL URL is used as is, so give a scratch database). The first ``KEFU_LOGIN_FAILURES_PER_ACCOUNT`` guesses
are hashed; the rest are refused before hashing. Last line: one JSON object with ``hashed`` (how many guesses
reached argon2), ``hashed_p50_ms`` and ``refused_p50_ms``/``refused_p99_ms`` (one guess, database round trips
included), and ``refused_share_of_hashed`` (refused p50 / hashed p50).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from router.accounts import users
from router.accounts.login import check_login
from router.accounts.login_throttle import LoginLocked
from router.bootstrap import bootstrap
from router.crm import migrate
from router.settings import Settings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    """Run the benchmark and print the figures, last line JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--guesses", type=int, default=500)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="kefu-login-bench-"))
    settings = Settings(
        database_url=args.database_url or f"sqlite:///{work_dir / 'kefu.db'}",
        var_dir=work_dir,
        password_hash_profile="rfc_9106_low_memory",  # what a guess costs in production, whatever the environment says
    )
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        users.add_user(uow.session, kefu.passwords, "target", "Target", "agent")
        uow.commit()
    hashed, refused = [], []
    for number in range(args.guesses):
        started = time.perf_counter()
        try:
            check_login(kefu, username="target", password=f"guess-{number}", ip=f"198.51.100.{number % 250}")
            hashed.append((time.perf_counter() - started) * 1000)
        except LoginLocked:
            refused.append((time.perf_counter() - started) * 1000)
    kefu.dispose()
    result = {
        "guesses": args.guesses,
        "hashed": len(hashed),
        "hashed_p50_ms": round(statistics.median(hashed), 1),
        "refused_p50_ms": round(statistics.median(refused), 2),
        "refused_p99_ms": round(percentile(refused, 0.99), 2),
        "refused_share_of_hashed": round(statistics.median(refused) / statistics.median(hashed), 4),
        "database": kefu.engine.dialect.name,
    }
    print(
        f"{result['hashed']} of {args.guesses} guesses hashed ({result['hashed_p50_ms']} ms each); "
        f"the rest refused in {result['refused_p50_ms']} ms (p99 {result['refused_p99_ms']} ms)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
