"""Read and write Rasa's YAML NLU format without importing Rasa: intent examples as (text, intent) pairs."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

RASA_YAML_VERSION = "3.1"
# Rasa's inline entity markup: [text](entity) or [text]{"entity": ...}.
_ANNOTATION = re.compile(r"\[([^\]]*)\]\([^)]*\)|\[([^\]]*)\]\{[^}]*\}")


@dataclass(frozen=True)
class Example:
    """One training sentence as Rasa stores it (entity annotations such as ``[123](order_number)`` kept)."""

    text: str
    intent: str


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` blocks, the way Rasa's own files look."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _represent_str)


def dump_yaml(document: dict[str, Any]) -> str:
    """YAML text for a Rasa data or domain document, unicode kept readable."""
    return yaml.dump(document, Dumper=_LiteralDumper, allow_unicode=True, sort_keys=False, width=1000)


def _example_lines(block: str) -> list[str]:
    return [line.strip()[2:].strip() for line in block.splitlines() if line.strip().startswith("- ")]


def read_nlu_file(path: Path) -> tuple[list[Example], list[dict[str, Any]]]:
    """The intent examples of one NLU file, and its other entries (regexes, lookups, synonyms) untouched."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    others: list[dict[str, Any]] = []
    for entry in document.get("nlu") or []:
        if "intent" in entry and isinstance(entry.get("examples"), str):
            examples.extend(Example(text, entry["intent"]) for text in _example_lines(entry["examples"]) if text)
        else:
            others.append(entry)
    return examples, others


def nlu_document(examples: Iterable[Example], others: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """A Rasa NLU document with ``examples`` grouped by intent (order of first appearance kept)."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        by_intent[example.intent].append(example.text)
    entries: list[dict[str, Any]] = [
        {"intent": intent, "examples": "".join(f"- {text}\n" for text in texts)} for intent, texts in by_intent.items()
    ]
    return {"version": RASA_YAML_VERSION, "nlu": entries + list(others)}


def write_nlu_file(path: Path, examples: Iterable[Example], others: Iterable[dict[str, Any]] = ()) -> None:
    """Write ``examples`` (and pass-through entries) as one Rasa NLU file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_yaml(nlu_document(examples, others)), encoding="utf-8")


def plain_text(example_text: str) -> str:
    """The sentence a customer would type: ``[123](order_number)`` annotations reduced to ``123``."""
    return _ANNOTATION.sub(lambda match: match.group(1) or match.group(2) or "", example_text)
