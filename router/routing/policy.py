"""The routing rules' numbers: supervisors' choices from data/triage/routing.yml, engineering limits as constants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from router.crm.interactions import MAX_STORED_CHARS
from router.errors import InvalidInput
from router.triage.config import read_yaml_mapping

POLICY_FILE = Path("triage") / "routing.yml"
# The console sends a heartbeat every 30 s (static/console.js); a shorter timeout would drop agents who are there.
MIN_HEARTBEAT_TIMEOUT = timedelta(seconds=60)

# Replies longer than this are refused rather than cut: the CRM's interaction log keeps a turn whole only up to this.
MAX_REPLY_CHARS = MAX_STORED_CHARS
MAX_NOTE_CHARS = 10_000
# Tickets one assignment transaction claims: big enough to amortise the round trips, small enough to keep locks short.
ASSIGN_BATCH = 100
# Waiting tickets one assignment call looks through per team: bounds the cost when nobody fits the head of a long queue.
ASSIGN_SCAN_LIMIT = 1000


@dataclass(frozen=True)
class RoutingPolicy:
    """What supervisors tune about routing; data/triage/routing.yml says what each number means."""

    heartbeat_timeout: timedelta
    reopen_within: timedelta
    escalate_when_left: float


def load_policy(path: Path) -> RoutingPolicy:
    """Read and check a routing.yml; a missing, malformed or out-of-range number is a clear InvalidInput."""
    raw = read_yaml_mapping(path, "routing policy")
    try:
        policy = RoutingPolicy(
            heartbeat_timeout=timedelta(seconds=float(raw["heartbeat_timeout_seconds"])),
            reopen_within=timedelta(days=float(raw["reopen_within_days"])),
            escalate_when_left=float(raw["escalate_when_left"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise InvalidInput(f"routing policy {path} is incomplete or malformed: {error!r}") from error
    if policy.heartbeat_timeout < MIN_HEARTBEAT_TIMEOUT:
        raise InvalidInput(f"routing policy {path}: heartbeat_timeout_seconds must be ≥ 60 (consoles beat every 30 s)")
    if policy.reopen_within < timedelta(0):
        raise InvalidInput(f"routing policy {path}: reopen_within_days must be ≥ 0")
    if not 0 <= policy.escalate_when_left < 1:
        raise InvalidInput(f"routing policy {path}: escalate_when_left must be a share from 0 up to (not) 1")
    return policy


@lru_cache(maxsize=4)
def _policy_at(path: Path) -> RoutingPolicy:
    return load_policy(path)


def routing_policy(data_dir: Path) -> RoutingPolicy:
    """The policy in the data folder ``data_dir`` (the settings' ``data_dir``), read once per process."""
    return _policy_at(Path(data_dir) / POLICY_FILE)
