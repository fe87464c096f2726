"""The two sides of the public data: the training side shipped in data/public, the held-out side left in shared/.

``kefu data split-public`` runs the near-copy split once and writes the training side as ``text,label`` CSV files,
one per source. Everything else reads those files, so the split is the same for every trainer and benchmark, and
the held-out side is exactly the shared rows whose text is not shipped.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from router.errors import InvalidInput
from router.public_data.sources import SHIPPABLE_SOURCES, PublicRow, shippable_rows
from router.public_data.split import canonical, held_out_mask


def training_file(public_dir: Path, source: str) -> Path:
    """Where the training side of ``source`` is shipped."""
    return Path(public_dir) / f"{source}_train.csv"


def write_training_side(shared_dir: Path, public_dir: Path) -> dict[str, tuple[int, int]]:
    """Split the shippable sets and write their training sides; returns (training, held-out) rows per source."""
    rows = shippable_rows(shared_dir)
    held_out = held_out_mask([row.text for row in rows])
    counts: dict[str, tuple[int, int]] = {}
    for source in SHIPPABLE_SOURCES:
        picked = [(row, out) for row, out in zip(rows, held_out, strict=True) if row.source == source]
        kept = [row for row, out in picked if not out]
        _write(training_file(public_dir, source), kept)
        counts[source] = (len(kept), len(picked) - len(kept))
    return counts


def _write(path: Path, rows: Sequence[PublicRow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows((row.text, row.label) for row in rows)


def training_rows(public_dir: Path) -> list[PublicRow]:
    """The shipped training side of every source."""
    rows: list[PublicRow] = []
    for source in SHIPPABLE_SOURCES:
        path = training_file(public_dir, source)
        if not path.is_file():
            raise InvalidInput(f"{path} is missing: run `kefu data split-public` to write it")
        with path.open(encoding="utf-8", newline="") as handle:
            rows.extend(PublicRow(row["text"], row["label"], source) for row in csv.DictReader(handle))
    return rows


def held_out_rows(shared_dir: Path, public_dir: Path) -> list[PublicRow]:
    """The shared rows no model may have seen: every row whose text the training side does not hold."""
    shipped = {canonical(row.text) for row in training_rows(public_dir)}
    return [row for row in shippable_rows(shared_dir) if canonical(row.text) not in shipped]
