"""Labelled or unlabelled texts from CSV, JSONL and CLINC150 JSON files, with one clear error per problem."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from router.errors import InvalidInput

csv.field_size_limit(10_000_000)


def _rows(path: Path) -> Iterator[dict[str, object]]:
    """Dicts per record; JSONL for .jsonl/.ndjson, CSV otherwise."""
    if not path.is_file():
        raise InvalidInput(f"data file {path} does not exist")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if path.suffix.lower() in {".jsonl", ".ndjson"}:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            record = json.loads(line)
                        except json.JSONDecodeError as error:
                            raise InvalidInput(f"{path} line {number} is not JSON: {error.msg}") from error
                        if not isinstance(record, dict):
                            raise InvalidInput(f"{path} line {number} is not a JSON object")
                        yield record
            else:
                yield from csv.DictReader(handle)
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{path} is not UTF-8 text (byte {error.start}): is it a binary file?") from error
    except csv.Error as error:
        raise InvalidInput(f"{path} is not valid CSV: {error}") from error


def read_texts(path: Path, text_column: str, label_column: str | None = None) -> tuple[list[str], list[str]]:
    """Texts (and labels, if a label column is named) of every record; empty texts are an error naming the row."""
    texts: list[str] = []
    labels: list[str] = []
    for number, row in enumerate(_rows(Path(path)), start=1):
        for column in (text_column, label_column):
            if column is not None and column not in row:
                known = ", ".join(str(key) for key in row)
                raise InvalidInput(f"{path} has no column {column!r} (it has: {known})")
        text = str(row[text_column] or "").strip()
        if label_column is not None:
            if not text:
                raise InvalidInput(f"{path} record {number} has an empty {text_column!r}")
            label = str(row[label_column] or "").strip()
            if not label:
                raise InvalidInput(f"{path} record {number} has an empty {label_column!r}")
            labels.append(label)
        texts.append(text)
    if not texts:
        raise InvalidInput(f"{path} has no records")
    return texts, labels


def convert_clinc(source: Path, out: Path, parts: tuple[str, ...] = ("train", "oos_train")) -> int:
    """Write CLINC150's ``{"train": [[text, intent], ...], ...}`` parts as ``text,label`` CSV; returns the rows."""
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(f"{source} is not a readable CLINC150 JSON file: {error}") from error
    missing = [part for part in parts if part not in data]
    if missing:
        raise InvalidInput(f"{source} has no {', '.join(missing)} (it has: {', '.join(data)})")
    rows = [pair for part in parts for pair in data[part]]
    with Path(out).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return len(rows)
