"""PII redaction: what it costs per message and per stored tracker turn, and how much ordinary text it changes.

``python -m benchmarks.redaction [--show 10]``

Every customer message of the NLU training examples and the complaint data set, both languages, goes through
``redact``: its time per message, and how many come out changed. Examples the data set marks as giving a phone
or an email (a ``phone``/``email`` entity) should change; any other change is either personal data the data set
does not mark (``--show`` prints every change, for a person to judge) or a false positive: an order number or a
sentence lost to a placeholder. Then the tracker store's share of a turn: redacting the five events of a typical
turn (a message with a phone and an order number, the slot, the bot's answer) as ``KefuTrackerStore.save`` does.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time

from benchmarks.nlu_cross_validation import PROJECT_ROOT, load_nlu_data
from router.crm.redaction import PII_ENTITIES, redact

COMPLAINTS = PROJECT_ROOT / "data" / "triage" / "complaints.csv"
TURNS = 2_000


def customer_texts() -> list[tuple[str, bool]]:
    """The NLU examples and the complaint data set, each with whether it is marked as giving a phone or email."""
    texts = [
        (example.get("text"), any(e.get("entity") in PII_ENTITIES for e in example.get("entities") or []))
        for example in load_nlu_data().intent_examples
    ]
    with COMPLAINTS.open(encoding="utf-8") as handle:
        texts += [(row["text"], False) for row in csv.DictReader(handle)]
    return [(text, marked) for text, marked in texts if text]


def timed_ms(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return (time.perf_counter() - started) * 1000


def tracker_turn_ms() -> list[float]:
    """Milliseconds to redact one turn's events as the tracker store writes them, ``TURNS`` times."""
    from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered

    from bot.tracker_store import personal_data_said, redacted_event

    def turn(text: str) -> list:
        order = [{"entity": "order_number", "value": "202311301234", "start": 0, "end": 12}]
        return [
            UserUttered(text, {"name": "complain", "confidence": 0.9}, order, timestamp=1.0),
            ActionExecuted("complaint_form", timestamp=1.1),
            SlotSet("order_number", "202311301234", timestamp=1.2),
            BotUttered("好的，已为您登记工单 T000123。Ticket T000123 is filed.", timestamp=1.3),
            ActionExecuted("action_listen", timestamp=1.4),
        ]

    turns = [
        turn("订单202311301234三天没到，电话13812345678"),
        turn("order 202311301234 never came, call me on (415) 555-0132"),
    ]

    def redact_turn(events: list) -> None:
        personal = personal_data_said(events, {})
        for event in events:
            redacted_event(event.as_dict(), personal)

    return [timed_ms(redact_turn, turns[n % len(turns)]) for n in range(TURNS)]


def percentile(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(share * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=10, help="Print this many changed texts.")
    args = parser.parse_args()
    texts = customer_texts()
    for text, _ in texts[:50]:
        redact(text)  # warm-up: compiled patterns, caches
    times = [timed_ms(redact, text) for text, _ in texts]
    changed = [(text, redact(text), marked) for text, marked in texts if redact(text) != text]
    for before, after, marked in changed[: args.show]:
        print(f"changed{' (marked)' if marked else ''}: {before!r} -> {after!r}")
    turn_times = tracker_turn_ms()
    result = {
        "benchmark": "redaction",
        "messages": len(texts),
        "marked_personal": sum(marked for _, marked in texts),
        "marked_personal_changed": sum(marked for _, _, marked in changed),
        "unmarked_changed": sum(not marked for _, _, marked in changed),
        "redact_ms_p50": round(statistics.median(times), 4),
        "redact_ms_p95": round(percentile(times, 0.95), 4),
        "redact_ms_max": round(max(times), 3),
        "tracker_turn_ms_p50": round(statistics.median(turn_times), 4),
        "tracker_turn_ms_p95": round(percentile(turn_times, 0.95), 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
