"""Danger floors on text the models never saw: does every safety, fraud and legal-threat message get its priority?

Run: ``python -m benchmarks.risk [--model DIR]``. Without ``--model`` the default triage model is trained first,
exactly as ``kefu triage train-default`` does, into a temporary folder: on our complaints, data/triage/risk.csv
and the shipped training side of the public sets (data/public), never on the texts judged here.

Judged on:
- ``public``: the held-out side of Banking77 and CLINC150 (router.public_data: no sentence or near-copy of it is
  in data/public). Real English; a row's risk is its label's in data/public/mapping.yml (fraud), else none.
- ``own``: data/triage/risk_test.csv, hand-written by the kefu authors apart from every training file, both
  languages, 25 messages per risk and language. Our own phrasings, so it is the weaker evidence, but it is the
  only test of safety and legal threats and of Chinese fraud: no licensed real text of those was found.
- ``zh_shopping``: real Chinese negative reviews sent as complaints, the part no model trains on
  (router.triage.sentiment.zh_shopping_held_out). Unlabelled for risk: only how many of them a floor raises is
  reported, as a check that floors do not fire on ordinary complaints wholesale.

For each risk and language: the share the floor catches (cue or model), the share the model alone catches (recall),
and the share at the priority the issue asks for (safety P1; fraud and legal threats P1/P2) through
``Triage.assess`` as a calm standard customer writes it. For harmless messages: the share raised by a floor.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from router.public_data.mapping import load_project_mapping
from router.public_data.sides import held_out_rows
from router.public_data.sources import zh_shopping_complaints
from router.settings import get_settings
from router.triage import Triage, train_default_model
from router.triage.config import NO_RISK, RISKS
from router.triage.sentiment import zh_shopping_held_out

# The priority each risk must reach (issue 17): safety P1; fraud and legal threats P1 or P2.
REQUIRED_PRIORITY = {"safety": 1, "fraud": 2, "legal_threat": 2}


@dataclass(frozen=True)
class Case:
    """One message to judge: its text, language, true risk and where it comes from."""

    text: str
    language: str
    risk: str
    source: str


def public_cases(shared_dir: Path, data_dir: Path, project_dir: Path) -> list[Case]:
    """The held-out side of Banking77 and CLINC150, each row's risk from the reviewed mapping."""
    mapping = load_project_mapping(project_dir, data_dir)
    return [
        Case(row.text, "en", mapping.meaning(row).risk, "public")
        for row in held_out_rows(shared_dir, data_dir / "public")
    ]


def own_cases(path: Path) -> list[Case]:
    """Our hand-written test messages (data/triage/risk_test.csv)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [Case(row["text"], row["language"], row["risk"], "own") for row in csv.DictReader(handle)]


def zh_shopping_cases(shared_dir: Path) -> list[Case]:
    """Real Chinese negative reviews of the held-out part (the risk and sentiment models train on a sample of the
    rest); their risk is unknown, so they are not judged for recall."""
    return [
        Case(row.text, "zh", "unknown", "zh_shopping")
        for row in zh_shopping_complaints(shared_dir)
        if zh_shopping_held_out(row.text)
    ]


def judge(triage: Triage, cases: Iterable[Case]) -> dict[str, dict[str, float]]:
    """Per source, risk and language: how many, caught by a floor, by the model alone, at the required priority."""
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for case in cases:
        assessment = triage.assess(case.text, case.language)
        floors = {floor["name"] for floor in assessment.floors}
        key = f"{case.source}/{case.risk}/{case.language}"
        tally = counts[key]
        tally["messages"] += 1
        if case.risk in RISKS:
            tally["floor"] += case.risk in floors
            tally["model"] += any(finding.risk == case.risk for finding in triage.risk.findings(case.text, 0))
            tally["required_priority"] += assessment.priority <= REQUIRED_PRIORITY[case.risk]
            tally["p1"] += assessment.priority == 1
        else:
            tally["raised_by_a_floor"] += bool(floors)
            tally["p1_or_p2"] += assessment.priority <= 2
    return {key: _shares(tally) for key, tally in sorted(counts.items())}


def _shares(tally: dict[str, float]) -> dict[str, float]:
    messages = tally.pop("messages")
    return {"messages": int(messages), **{name: round(value / messages, 4) for name, value in tally.items()}}


def misses(triage: Triage, cases: Iterable[Case], most: int = 15) -> list[dict[str, object]]:
    """Dangerous messages no floor caught, for the write-up (the first ``most``)."""
    missed = []
    for case in cases:
        if case.risk in RISKS:
            assessment = triage.assess(case.text, case.language)
            if case.risk not in {floor["name"] for floor in assessment.floors}:
                missed.append({"risk": case.risk, "text": case.text, "priority": assessment.priority})
                if len(missed) == most:
                    break
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained triage model directory (default: train one)")
    args = parser.parse_args()
    settings = get_settings()
    shared, data = settings.shared_data_dir, settings.data_dir
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        if args.model is None:
            args.model = Path(scratch) / "triage"
            trained = train_default_model(args.model, data, shared, project_dir=settings.project_dir)
            print(json.dumps({"risk_training": trained["risk"]}, ensure_ascii=False))
        train_seconds = round(time.perf_counter() - started, 1)
        triage = Triage.load(args.model, data / "triage")
        cases = {
            "public": public_cases(shared, data, settings.project_dir),
            "own": own_cases(data / "triage" / "risk_test.csv"),
            "zh_shopping": zh_shopping_cases(shared),
        }
        started = time.perf_counter()
        figures = {name: judge(triage, group) for name, group in cases.items()}
        judge_seconds = round(time.perf_counter() - started, 1)
        for name in ("public", "own"):
            print(json.dumps({f"missed_{name}": misses(triage, cases[name])}, ensure_ascii=False))
    print(
        json.dumps(
            {
                "benchmark": "risk",
                "figures": figures,
                "none_label": NO_RISK,
                "train_seconds": train_seconds,
                "judge_seconds": judge_seconds,
                "load_average": [round(load, 2) for load in os.getloadavg()],
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
