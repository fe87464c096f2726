"""Password guessing over real HTTP, on SQLite and PostgreSQL: the throttle locks out before argon2 is reached.

Each 401 below costs one argon2 hash; a 429 costs none. Counting them is how the tests see where the hashing stops.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pytest

from router.accounts import users
from router.accounts.login_throttle import ThrottlePolicy, charge_attempt, prune_expired, refund_success
from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.crm.models import utcnow
from router.settings import Settings
from tests.support.crm import give_chosen_password
from tests.support.databases import fresh_postgres_database
from tests.support.web import Server, form_login, web_app_in_thread

GUESSES = 300
# Lower than the defaults (10 and 50), so a handful of guesses reaches them: what these tests look at is where the
# hashing stops, whatever the numbers.
LIMITS = {"login_failures_per_account": 3, "login_failures_per_ip": 10}
ACCOUNTS = ("victim", "bystander", "typist")  # the tests share one server: each keeps to its own accounts


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The web app with the throttle at LIMITS over a fresh CRM holding ACCOUNTS with their own passwords (the tests'
    cheap hashes: what counts here is how many guesses reach the hasher), one per database kind for the module."""
    tmp_path = tmp_path_factory.mktemp("throttle")
    with ExitStack() as stack:
        if request.param == "sqlite":
            database_url = f"sqlite:///{tmp_path / 'kefu.db'}"
        else:
            database_url = stack.enter_context(fresh_postgres_database(request.getfixturevalue("postgres_server")))
        settings = Settings(database_url=database_url, var_dir=tmp_path / "var", **LIMITS)
        kefu = bootstrap(settings)
        stack.callback(kefu.dispose)
        migrate.upgrade(kefu.engine)
        with kefu.uow() as uow:
            for username in ACCOUNTS:
                users.add_user(uow.session, kefu.passwords, username, username, "agent")
                give_chosen_password(uow.session, username, f"{username}-right-password")
            uow.commit()
        base_url = stack.enter_context(web_app_in_thread(settings))
        yield Server(base_url=base_url, kefu=kefu)


def token_attempt(client: httpx.Client, username: str, password: str, ip: str) -> httpx.Response:
    """POST /api/tokens as if from ``ip``: the app's ProxyHeadersMiddleware (router/web/headers.py) believes
    X-Forwarded-For from KEFU_TRUSTED_PROXIES only, by default the loopback address this test connects from."""
    return client.post(
        "/api/tokens", json={"username": username, "password": password}, headers={"X-Forwarded-For": ip}
    )


def guess_concurrently(server: Server, attempts: list[tuple[str, str, str]]) -> list[httpx.Response]:
    """Send the attempts eight at a time, each sender with its own keep-alive connection."""
    local = threading.local()

    def send(attempt: tuple[str, str, str]) -> httpx.Response:
        if not hasattr(local, "client"):
            local.client = server.client()
        return token_attempt(local.client, *attempt)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(send, attempts))


def test_a_flood_of_guesses_at_one_account_hashes_only_the_allowed_few(server: Server) -> None:
    # Every guess from a different address, as a botnet would: only the account's own counter can stop them.
    allowed = server.kefu.settings.login_failures_per_account
    started = time.perf_counter()
    responses = guess_concurrently(
        server, [("victim", f"guess-{n}", f"198.51.{n // 250}.{n % 250}") for n in range(GUESSES)]
    )
    elapsed = time.perf_counter() - started
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: allowed, 429: GUESSES - allowed}
    locked = next(response for response in responses if response.status_code == 429)
    window_s = server.kefu.settings.login_lockout_minutes * 60
    assert 0 < int(locked.headers["Retry-After"]) <= window_s
    assert "too many failed logins" in locked.json()["error"]
    print(f"{GUESSES} guesses in {elapsed:.1f} s, {statuses[401]} reached the password hasher")

    # The right password during the lockout is refused too, by the form as by the API; other accounts carry on.
    client = server.client()
    assert token_attempt(client, "victim", "victim-right-password", "192.0.2.1").status_code == 429
    page = form_login(client, "victim", "victim-right-password")
    assert page.status_code == 429 and "Retry-After" in page.headers and "try again in" in page.text
    assert token_attempt(client, "bystander", "bystander-right-password", "192.0.2.1").status_code == 200


def test_guesses_from_one_address_at_many_accounts_lock_that_address_out(server: Server) -> None:
    allowed = server.kefu.settings.login_failures_per_ip
    sprayed = 4 * allowed
    responses = guess_concurrently(server, [(f"user{n}", "password123", "203.0.113.7") for n in range(sprayed)])
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: allowed, 429: sprayed - allowed}
    client = server.client()
    assert token_attempt(client, "bystander", "bystander-right-password", "203.0.113.7").status_code == 429
    assert token_attempt(client, "bystander", "bystander-right-password", "203.0.113.8").status_code == 200


def test_a_successful_login_starts_the_account_count_again(server: Server) -> None:
    client = server.client()
    for _ in range(2):
        for n in range(server.kefu.settings.login_failures_per_account - 1):
            assert token_attempt(client, "typist", f"typo-{n}", "192.0.2.9").status_code == 401
        assert token_attempt(client, "typist", "typist-right-password", "192.0.2.9").status_code == 200


def test_counts_start_afresh_when_the_window_ends_and_ended_windows_are_pruned(kefu_any_db: Kefu) -> None:
    policy = ThrottlePolicy(per_account=2, per_ip=100, window=timedelta(minutes=15))
    now = utcnow()
    with kefu_any_db.uow() as uow:
        verdicts = [charge_attempt(uow.session, policy, ip="192.0.2.3", username="Lina ", now=now) for _ in range(3)]
        assert verdicts[:2] == [None, None] and verdicts[2] == 15 * 60
        # Usernames count case-insensitively: "LINA" is the same account.
        assert charge_attempt(uow.session, policy, ip="192.0.2.4", username="LINA", now=now) == 15 * 60
        later = now + timedelta(minutes=15, seconds=1)
        assert charge_attempt(uow.session, policy, ip="192.0.2.3", username="lina", now=later) is None
        refund_success(uow.session, ip="192.0.2.3", username="lina")
        assert prune_expired(uow.session, later) == 1  # only 192.0.2.4's window had ended
        uow.commit()


def test_a_request_that_read_the_clock_before_the_window_opened_waits_no_longer_than_the_window(
    kefu_any_db: Kefu,
) -> None:
    # Concurrent requests: the one that read the clock later took the row lock first and opened the window.
    policy = ThrottlePolicy(per_account=1, per_ip=100, window=timedelta(minutes=15))
    earlier = utcnow()
    with kefu_any_db.uow() as uow:
        opened = charge_attempt(uow.session, policy, ip="192.0.2.5", username="mei", now=earlier + timedelta(seconds=2))
        assert opened is None
        assert charge_attempt(uow.session, policy, ip="192.0.2.6", username="mei", now=earlier) == 15 * 60
