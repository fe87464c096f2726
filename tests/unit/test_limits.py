"""The flood limits' bounded sets and the web chat's message limits on a real CRM; pages free of inline scripts."""

from __future__ import annotations

import re
import socket
import uuid

import pytest

from router.bootstrap import Kefu
from router.web.limits import Limits, MemoryBoundedSets, RateLimited, RedisBoundedSets
from router.web.templating import TEMPLATES_DIR
from tests.support.crm import open_demo_ticket


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bounded_set_admits_up_to_its_limit_then_says_when_a_place_frees() -> None:
    clock = Clock()
    sets = MemoryBoundedSets(clock)
    assert sets.admit("k", "a", 2, 60) is None
    clock.now += 10
    assert sets.admit("k", "b", 2, 60) is None
    assert sets.admit("k", "a", 2, 60) is None  # already in: no second place taken
    assert sets.admit("k", "c", 2, 60) == pytest.approx(50)  # "a" expires 50 s from now
    assert sets.admit("other", "c", 2, 60) is None  # keys are independent
    clock.now += 50
    assert sets.admit("k", "c", 2, 60) is None
    sets.release("k", "b")
    assert sets.admit("k", "d", 2, 60) is None
    assert sets.admit("k", "e", 2, 60) is not None
    sets.release("k", "never-admitted")


def _limits(kefu: Kefu, clock: Clock, **settings: int) -> Limits:
    return Limits(MemoryBoundedSets(clock), kefu.settings.copy(update=settings))


def test_a_customer_flooding_messages_is_refused_with_the_time_to_wait(kefu: Kefu) -> None:
    clock = Clock()
    limits = _limits(kefu, clock, webchat_messages_per_minute=5, webchat_ip_messages_per_minute=100)
    customer = f"web:{uuid.uuid4()}"
    for _ in range(5):
        limits.webchat_message(kefu, "203.0.113.1", customer)
        clock.now += 1
    with pytest.raises(RateLimited) as refused:
        limits.webchat_message(kefu, "203.0.113.1", customer)
    assert refused.value.retry_after_s == 55
    limits.webchat_message(kefu, "203.0.113.1", f"web:{uuid.uuid4()}")  # others on the same network still chat
    clock.now += 55
    limits.webchat_message(kefu, "203.0.113.1", customer)


def test_one_address_flooding_messages_is_refused_whichever_customer_it_claims(kefu: Kefu) -> None:
    clock = Clock()
    limits = _limits(kefu, clock, webchat_ip_messages_per_minute=10, webchat_new_sessions_per_hour=100)
    for _ in range(10):
        limits.webchat_message(kefu, "203.0.113.2", f"web:{uuid.uuid4()}")
    with pytest.raises(RateLimited):
        limits.webchat_message(kefu, "203.0.113.2", f"web:{uuid.uuid4()}")
    limits.webchat_message(kefu, "198.51.100.2", f"web:{uuid.uuid4()}")


def test_new_customers_from_one_address_are_capped_and_known_ones_are_not(kefu: Kefu) -> None:
    clock = Clock()
    limits = _limits(kefu, clock, webchat_new_sessions_per_hour=3)
    known = f"web:{uuid.uuid4()}"
    open_demo_ticket(kefu, known, "快递没到")
    admitted = [f"web:{uuid.uuid4()}" for _ in range(3)]
    for sender_id in admitted:
        limits.new_webchat_session(kefu, "203.0.113.3", sender_id)
    with pytest.raises(RateLimited) as refused:
        limits.new_webchat_session(kefu, "203.0.113.3", f"web:{uuid.uuid4()}")
    assert refused.value.retry_after_s == 3600
    limits.new_webchat_session(kefu, "203.0.113.3", admitted[0])
    limits.new_webchat_session(kefu, "203.0.113.3", known)


def test_a_stream_refused_for_its_owner_gives_back_its_place_under_the_address(kefu: Kefu) -> None:
    limits = _limits(kefu, Clock(), event_streams_per_ip=2, event_streams_per_client=1)
    limits.open_stream("203.0.113.4", "user:1")
    with pytest.raises(RateLimited):
        limits.open_stream("203.0.113.4", "user:1")
    limits.open_stream("203.0.113.4", "user:2")  # the refused stream took no place from the address


# What a Content-Security-Policy of script-src 'self' and style-src 'self' would block in a page.
_INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "style element": re.compile(r"<style", re.I),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES_DIR.glob("*.html")), ids=lambda path: path.name)
def test_templates_carry_no_inline_script_or_style(template) -> None:
    text = template.read_text()
    found = [kind for kind, pattern in _INLINE.items() if pattern.search(text)]
    assert not found, f"{template.name}: {found} (move it to a file in router/web/static)"


def test_a_redis_outage_lets_customers_through_and_says_so(kefu: Kefu, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    limits = Limits(
        RedisBoundedSets(f"redis://127.0.0.1:{closed}/0"), kefu.settings.copy(update={"event_streams_per_ip": 1})
    )
    for _ in range(3):
        limits.webchat_message(kefu, "203.0.113.5", f"web:{uuid.uuid4()}")
        limits.release(limits.open_stream("203.0.113.5", "user:1").keys, "any")
    assert "rate limiter unavailable" in caplog.text
