"""The routing rules' tunable numbers, in one place so the worker, the web layer and the tests agree."""

from __future__ import annotations

from datetime import timedelta

# An agent whose console has not sent a heartbeat for this long is treated as gone and loses unstarted tickets.
HEARTBEAT_TIMEOUT = timedelta(seconds=90)
# A customer writing again this soon after their ticket was resolved reopens it instead of starting over.
REOPEN_WITHIN = timedelta(days=7)
# Escalate when this share of an SLA window is left: early enough for a supervisor to act before the breach.
ESCALATE_WHEN_LEFT = 0.2
# Replies longer than this are refused: Telegram caps a message at 4096 characters.
MAX_REPLY_CHARS = 4000
MAX_NOTE_CHARS = 10_000
# Tickets one assignment transaction claims: big enough to amortise the round trips, small enough to keep locks short.
ASSIGN_BATCH = 100
# Waiting tickets one assignment call looks through per team: bounds the cost when nobody fits the head of a long queue.
ASSIGN_SCAN_LIMIT = 1000
