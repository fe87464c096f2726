"""Flood, size and framing attacks on the running web app (uvicorn on a free port, real HTTP), each refused.

uvicorn serves the app from a thread of the test process, configured as ``kefu web`` configures it; the tests about
processes (two sharing a limit, one reading its limits from its ``KEFU_*`` environment) start web app processes.

Each test speaks from its own made-up client address through ``X-Forwarded-For``, which the app believes from its
trusted proxy (127.0.0.1, where the tests connect from), so per-IP limits of one test never touch another's.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.models import Customer, TicketEvent, TicketEventKind
from router.settings import Settings
from router.web import webchat
from router.web.limits import RedisBoundedSets
from tests.support.crm import DEMO_PASSWORD, open_demo_ticket, seeded_kefu
from tests.support.web import running_web_app, web_app_in_thread

REDIS_URL = "redis://127.0.0.1:6379/0"
STREAM_PATHS = ("/webchat/events", "/console/stream")


@dataclass(frozen=True)
class Site:
    """A running web app and the CRM behind it."""

    base_url: str
    kefu: Kefu


@contextmanager
def running_site(tmp_path: Path, **limits: object) -> Iterator[Site]:
    """A demo-seeded SQLite CRM served with the settings in ``limits``."""
    with (
        seeded_kefu(f"sqlite:///{tmp_path / 'kefu.db'}", tmp_path, **limits) as kefu,
        web_app_in_thread(site_settings(kefu, tmp_path)) as base_url,
    ):
        yield Site(base_url, kefu)


@contextmanager
def running_site_process(tmp_path: Path, **env: str) -> Iterator[Site]:
    """A demo-seeded SQLite CRM served by a web app process that reads the ``KEFU_*`` settings in ``env``."""
    with (
        seeded_kefu(f"sqlite:///{tmp_path / 'kefu.db'}", tmp_path) as kefu,
        running_web_app(site_settings(kefu, tmp_path), tmp_path / "uvicorn.log", extra_env=env) as base_url,
    ):
        yield Site(base_url, kefu)


def site_settings(kefu: Kefu, tmp_path: Path) -> Settings:
    return kefu.settings.copy(update={"secret_key": "limits-" + tmp_path.name})


def as_client(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def customers(kefu: Kefu) -> int:
    with kefu.reader() as reader:
        return reader.session.scalar(select(func.count(Customer.id)))


def assert_rate_limited(response: httpx.Response, most_s: int) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= most_s


def client_of(site: Site, address: str) -> httpx.Client:
    """An HTTP client of ``site`` speaking from ``address``."""
    return httpx.Client(base_url=site.base_url, headers=as_client(address), timeout=10)


def log_in(client: httpx.Client, username: str) -> None:
    form = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    answer = client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": csrf})
    assert answer.status_code == 303, answer.text


@dataclass
class ChatBrowser:
    """A browser that opened the chat page: its client and its chat session.

    The session goes both in the cookie the page may set and in ``?session=``, so the tests hold whichever way the
    web app learns who is chatting.
    """

    client: httpx.Client
    session: str

    def stream(self) -> AbstractContextManager[httpx.Response]:
        return open_stream(self.client, "/webchat/events", session=self.session)


@contextmanager
def chat_browser(site: Site, address: str) -> Iterator[ChatBrowser]:
    with client_of(site, address) as client:
        assert client.get("/chat").status_code == 200
        yield ChatBrowser(client, str(uuid.uuid4()))


@pytest.fixture(scope="module")
def default_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The site with every limit at its default, shared by the tests that change nothing a limit counts."""
    with running_site(tmp_path_factory.mktemp("default-site")) as site:
        yield site


@pytest.fixture
def address() -> str:
    """A made-up client address (TEST-NET-3) for this test."""
    return f"203.0.113.{random.randint(1, 254)}"


@pytest.mark.skipif(
    "/webchat/messages" in {getattr(route, "path", "") for route in webchat.router.routes},
    reason="the web app takes the chat's messages itself: test_webchat_flood.py floods that route",
)
def test_a_flood_of_new_webchat_ids_from_one_address_is_refused(tmp_path: Path, address: str) -> None:
    known = uuid.uuid4()
    with running_site(tmp_path, webchat_new_sessions_per_hour=5) as site:
        open_demo_ticket(site.kefu, f"web:{known}", "快递没到")
        before = customers(site.kefu)
        with client_of(site, address) as attacker:
            answers = [attacker.get("/webchat/history", params={"session": str(uuid.uuid4())}) for _ in range(12)]
            assert [answer.status_code for answer in answers[:5]] == [200] * 5
            for refused in answers[5:]:
                assert_rate_limited(refused, 3600)
            # An id already admitted, and a customer the CRM knows, still get their chat from the same address.
            admitted = answers[0].request.url.params["session"]
            assert attacker.get("/webchat/history", params={"session": admitted}).status_code == 200
            assert attacker.get("/webchat/history", params={"session": str(known)}).status_code == 200
        elsewhere = httpx.get(
            f"{site.base_url}/webchat/history", params={"session": str(uuid.uuid4())}, headers=as_client("198.51.100.7")
        )
        assert elsewhere.status_code == 200
        assert customers(site.kefu) == before


def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_dodge_the_limit(tmp_path: Path) -> None:
    # The app trusts no proxy here, so each request's X-Forwarded-For is the attacker's own invention. A process of
    # its own, as in production, which takes both settings from its KEFU_* environment.
    limits = {"KEFU_EVENT_STREAMS_PER_IP": "2", "KEFU_TRUSTED_PROXIES": "192.0.2.1"}
    with running_site_process(tmp_path, **limits) as site, ExitStack() as stack:
        browsers = [stack.enter_context(chat_browser(site, f"198.51.100.{n}")) for n in range(3)]
        streams = [stack.enter_context(browser.stream()) for browser in browsers]
        assert [stream.status_code for stream in streams] == [200, 200, 429]


@contextmanager
def open_stream(client: httpx.Client, path: str, **params: str) -> Iterator[httpx.Response]:
    with client.stream("GET", path, params=params) as response:
        if response.status_code == 200:
            # Kept until the block ends: a dropped line iterator closes the response, and the stream with it.
            lines = response.iter_lines()
            assert next(lines).startswith("retry:")
        else:
            response.read()
        yield response


def test_too_many_open_event_streams_are_refused_and_a_closed_one_frees_its_slot(tmp_path: Path, address: str) -> None:
    with running_site(tmp_path, event_streams_per_client=2, event_streams_per_ip=3) as site, ExitStack() as browsers:
        customer, other, third = (browsers.enter_context(chat_browser(site, address)) for _ in range(3))
        with ExitStack() as streams:
            for _ in range(2):
                assert streams.enter_context(customer.stream()).status_code == 200
            assert_rate_limited(streams.enter_context(customer.stream()), 180)  # the customer's limit
            assert streams.enter_context(other.stream()).status_code == 200  # the address's third stream
            assert_rate_limited(streams.enter_context(third.stream()), 180)  # the address's limit
        # The browser went away: the server notices within a poll and frees the slots.
        deadline = time.monotonic() + 15
        while True:
            with customer.stream() as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "closed streams never freed their slots"
            time.sleep(0.5)


def test_too_many_console_streams_of_one_user_are_refused(tmp_path: Path, address: str) -> None:
    with running_site(tmp_path, event_streams_per_client=2) as site, client_of(site, address) as agent:
        log_in(agent, "lina")
        with open_stream(agent, "/console/stream") as first, open_stream(agent, "/console/stream") as second:
            assert (first.status_code, second.status_code) == (200, 200)
            with open_stream(agent, "/console/stream") as third:
                assert_rate_limited(third, 180)


def _raw_request(base_url: str, head: str, body_parts: list[bytes]) -> tuple[int, str]:
    """Send a request over a bare socket (so the body can be cut short) and read the answer's status and text."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(head.encode())
        for part in body_parts:
            connection.sendall(part)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        return answer.status, answer.read().decode()


def _notes(kefu: Kefu, ticket_id: int) -> int:
    with kefu.reader() as reader:
        return reader.session.scalar(
            select(func.count(TicketEvent.id)).where(
                TicketEvent.ticket_id == ticket_id, TicketEvent.kind == TicketEventKind.note
            )
        )


def test_a_huge_body_is_refused_before_it_is_read_and_nothing_is_stored(tmp_path: Path) -> None:
    with running_site(tmp_path, max_body_bytes=65536) as site:
        ticket_id = open_demo_ticket(site.kefu, "web:huge-body", "快递没到")
        token = httpx.post(f"{site.base_url}/api/tokens", json={"username": "lina", "password": DEMO_PASSWORD}).json()[
            "token"
        ]
        path = f"/api/tickets/{ticket_id}/notes"
        auth = {"Authorization": f"Bearer {token}"}
        fine = httpx.post(f"{site.base_url}{path}", json={"text": "checked the courier"}, headers=auth)
        assert fine.status_code == 201, fine.text
        head = (
            f"POST {path} HTTP/1.1\r\nHost: kefu\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        )

        # Declared huge: answered at once, although only the first bytes of the gigabyte were ever sent.
        status, text = _raw_request(site.base_url, head + "Content-Length: 1000000000\r\n\r\n", [b'{"text": "xxxx'])
        assert status == 413 and "at most 65536 bytes" in text

        # Sent in chunks with no length: refused as soon as it passes the limit.
        note = json.dumps({"text": "x" * 100_000}).encode()
        chunks = [b"%x\r\n%s\r\n" % (len(note[i : i + 16384]), note[i : i + 16384]) for i in range(0, 81920, 16384)]
        status, text = _raw_request(site.base_url, head + "Transfer-Encoding: chunked\r\n\r\n", chunks)
        assert status == 413 and "at most 65536 bytes" in text

        assert _notes(site.kefu, ticket_id) == 1


def test_every_page_has_the_content_security_policy(default_site: Site) -> None:
    ticket_id = open_demo_ticket(default_site.kefu, "web:csp", "快递没到")
    with httpx.Client(base_url=default_site.base_url, timeout=20) as admin:
        log_in(admin, "admin")
        pages = [
            "/login",
            "/console",
            f"/console/tickets/{ticket_id}",
            "/supervisor",
            "/admin",
            "/admin/inbox",
            "/admin/models",
            "/analytics/kpis",
            "/api/docs",
            "/no-such-page",
            "/chat",
            "/chat?embed=1",
            "/static/console.js",
        ]
        for page in pages:
            response = admin.get(page, follow_redirects=True)
            assert response.status_code in (200, 404), (page, response.status_code)
            policy = dict(
                directive.strip().split(" ", 1) for directive in response.headers["content-security-policy"].split(";")
            )
            assert policy["script-src"].startswith("'self'"), page
            assert "'unsafe-inline'" not in policy["script-src"], page
            assert (policy["object-src"], policy["base-uri"], policy["default-src"]) == (
                "'none'",
                "'self'",
                "'self'",
            )
            assert response.headers["permissions-policy"].startswith("camera=()")
            assert response.headers["referrer-policy"] == "same-origin"
            assert "strict-transport-security" not in response.headers  # plain http here
            if page.startswith(("/chat", "/static")):
                assert "frame-ancestors" not in policy and "x-frame-options" not in response.headers, page
            else:
                assert policy["frame-ancestors"] == "'none'" and response.headers["x-frame-options"] == "DENY"


def test_https_through_a_trusted_proxy_gets_hsts_and_secure_cookies(default_site: Site, tmp_path: Path) -> None:
    plain = httpx.get(f"{default_site.base_url}/login")
    assert "strict-transport-security" not in plain.headers
    assert "secure" not in plain.headers["set-cookie"].lower()
    proxied = httpx.get(f"{default_site.base_url}/login", headers={"X-Forwarded-Proto": "https"})
    assert proxied.headers["strict-transport-security"] == "max-age=31536000"
    assert all("; secure" in cookie.lower() for cookie in proxied.headers.get_list("set-cookie"))
    with running_site(tmp_path / "untrusted", trusted_proxies="192.0.2.1") as site:
        spoofed = httpx.get(f"{site.base_url}/login", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in spoofed.headers
    with running_site(tmp_path / "public", public_url="https://kefu.example") as site:
        behind_tls = httpx.get(f"{site.base_url}/login")
        assert behind_tls.headers["strict-transport-security"] == "max-age=31536000"
        assert "; secure" in behind_tls.headers["set-cookie"].lower()


def _redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis answers at {REDIS_URL} ({error})")
    return client


def test_two_web_app_processes_share_one_limit_through_redis(tmp_path: Path, address: str) -> None:
    store = _redis_or_skip()
    env = {"KEFU_REDIS_URL": REDIS_URL, "KEFU_EVENT_STREAMS_PER_IP": "2"}
    try:
        with (
            running_site_process(tmp_path / "one", **env) as one,
            running_site_process(tmp_path / "two", **env) as two,
            chat_browser(one, address) as first,
            chat_browser(two, address) as second,
            chat_browser(two, address) as third,
            chat_browser(one, address) as fourth,
            first.stream() as on_one,
            second.stream() as on_two,
        ):
            assert (on_one.status_code, on_two.status_code) == (200, 200)
            with third.stream() as refused_on_two, fourth.stream() as refused_on_one:
                assert_rate_limited(refused_on_two, 180)
                assert_rate_limited(refused_on_one, 180)
    finally:
        for key in store.scan_iter(f"kefu:limit:*{address}"):
            store.delete(key)


def test_redis_sets_admit_refuse_release_and_expire() -> None:
    store = _redis_or_skip()
    sets, key = RedisBoundedSets(REDIS_URL), f"kefu:limit:test:{uuid.uuid4()}"
    try:
        assert sets.admit(key, "a", 2, 0.5) is None
        assert sets.admit(key, "a", 2, 0.5) is None  # already in: admitted again, no second place
        assert sets.admit(key, "b", 2, 0.5) is None
        wait = sets.admit(key, "c", 2, 0.5)
        assert wait is not None and 0 < wait <= 0.5
        sets.release(key, "a")
        assert sets.admit(key, "c", 2, 0.5) is None
        time.sleep(0.6)
        assert sets.admit(key, "d", 2, 0.5) is None and sets.admit(key, "e", 2, 0.5) is None  # b and c expired
        assert 0 < store.pttl(key) <= 500  # the key itself goes when its last member does
    finally:
        store.delete(key)
