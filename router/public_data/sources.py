"""Rows of the public data sets in the shared data folder (see its README for licences)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from router.errors import InvalidInput

BANKING77 = "banking77"
CLINC150 = "clinc150"
ZH_SHOPPING = "zh_shopping"
SHIPPABLE_SOURCES = (BANKING77, CLINC150)


@dataclass(frozen=True)
class PublicRow:
    """One message as its source labelled it."""

    text: str
    label: str
    source: str


def _required(path: Path) -> Path:
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist: set KEFU_SHARED_DATA_DIR to the folder holding the public data")
    return path


def banking77(shared_dir: Path) -> list[PublicRow]:
    """Banking77's training file (CC BY 4.0): ``text,category``."""
    with _required(Path(shared_dir) / BANKING77 / "train.csv").open(encoding="utf-8", newline="") as handle:
        return [PublicRow(row["text"].strip(), row["category"], BANKING77) for row in csv.DictReader(handle)]


def clinc150(shared_dir: Path) -> list[PublicRow]:
    """CLINC150's train, validation and out-of-scope parts (CC BY 3.0); out-of-scope rows have the label ``oos``."""
    data = json.loads(_required(Path(shared_dir) / CLINC150 / "train_val.json").read_text(encoding="utf-8"))
    return [PublicRow(text.strip(), intent, CLINC150) for part in data.values() for text, intent in part]


def zh_shopping_complaints(shared_dir: Path) -> list[PublicRow]:
    """zh_shopping's negative reviews, labelled with their product line. No licence: evaluate on them, never ship."""
    return _zh_shopping_reviews(shared_dir, "0")


def zh_shopping_praise(shared_dir: Path) -> list[PublicRow]:
    """zh_shopping's positive reviews, labelled with their product line. No licence: evaluate on them, never ship."""
    return _zh_shopping_reviews(shared_dir, "1")


def _zh_shopping_reviews(shared_dir: Path, sentiment: str) -> list[PublicRow]:
    with _required(Path(shared_dir) / ZH_SHOPPING / "dev.csv").open(encoding="utf-8", newline="") as handle:
        return [
            PublicRow(row["review"].strip(), row["cat"], ZH_SHOPPING)
            for row in csv.DictReader(handle)
            if row["label"] == sentiment and row["review"].strip()
        ]


def shippable_rows(shared_dir: Path) -> list[PublicRow]:
    """Every row of the sets whose licences let kefu ship them, Banking77 first."""
    return banking77(shared_dir) + clinc150(shared_dir)
