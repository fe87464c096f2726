"""``kefu triage`` as a child process on the real shared data sets, as they are (skips when they are absent)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from router.settings import get_settings
from router.triage.sentiment import zh_shopping_held_out
from router.triage.training import train_sentiment

SHARED = get_settings().shared_data_dir
# ~40 CPU-seconds training and predicting on tens of thousands of real rows: make test runs them, make check does not.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data sets at {SHARED}")]


def kefu_triage(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``kefu triage`` CLI in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "router", "triage", *args], capture_output=True, text=True, timeout=600, check=False
    )


def train_and_predict(tmp_path: Path, train: Path, test: Path, text: str, label: str) -> list[dict]:
    model = tmp_path / "model"
    trained = kefu_triage(
        "train", "--data", str(train), "--text-column", text, "--label-column", label, "--out", str(model)
    )
    assert trained.returncode == 0, trained.stderr
    predicted = kefu_triage("predict", "--model", str(model), "--data", str(test), "--text-column", text)
    assert predicted.returncode == 0, predicted.stderr
    return [json.loads(line) for line in predicted.stdout.splitlines()]


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_banking77_csv_as_it_is(tmp_path: Path) -> None:
    with (SHARED / "banking77" / "train.csv").open(encoding="utf-8") as handle:
        rows = [[row["text"], row["category"]] for row in csv.DictReader(handle)]
    train, test = rows[::3], rows[1::20]  # a third to train on keeps the test quick
    lines = train_and_predict(
        tmp_path, write_rows(tmp_path / "train.csv", ["text", "category"], train),
        write_rows(tmp_path / "test.csv", ["text", "category"], test), "text", "category",
    )  # fmt: skip
    assert len(lines) == len(test)
    accuracy = sum(line["label"] == row[1] for line, row in zip(lines, test, strict=True)) / len(test)
    assert accuracy > 0.8


def test_zh_shopping_csv_with_its_own_columns(tmp_path: Path) -> None:
    with (SHARED / "zh_shopping" / "dev.csv").open(encoding="utf-8") as handle:
        rows = [[row["cat"], row["label"], row["review"]] for row in csv.DictReader(handle)]
    train = rows[::12]
    # Predicting the shared file itself, as it is: 50k reviews, so the CLI splits them over every core by default.
    lines = train_and_predict(
        tmp_path, write_rows(tmp_path / "train.csv", ["cat", "label", "review"], train),
        SHARED / "zh_shopping" / "dev.csv", "review", "cat",
    )  # fmt: skip
    assert len(lines) == len(rows)
    held_out = [(line, row) for index, (line, row) in enumerate(zip(lines, rows, strict=True)) if index % 12]
    # Answers out of input order would score about 10 % (one product line in ten).
    assert sum(line["label"] == row[0] for line, row in held_out) / len(held_out) > 0.75
    assert all(line["terms"] for line, _ in held_out[:50])


def test_clinc150_out_of_scope_is_flagged(tmp_path: Path) -> None:
    data = json.loads((SHARED / "clinc150" / "train_val.json").read_text(encoding="utf-8"))
    intents = sorted({intent for _, intent in data["train"]})[:30]
    subset = {part: [pair for pair in data[part] if pair[1] in intents or part.startswith("oos")] for part in data}
    source = tmp_path / "clinc_subset.json"
    source.write_text(json.dumps(subset), encoding="utf-8")
    for parts, name in ((["train", "oos_train"], "train.csv"), (["val", "oos_val"], "test.csv")):
        converted = kefu_triage(
            "convert-clinc",
            str(source),
            "--out",
            str(tmp_path / name),
            *[arg for part in parts for arg in ("--part", part)],
        )
        assert converted.returncode == 0, converted.stderr
    lines = train_and_predict(tmp_path, tmp_path / "train.csv", tmp_path / "test.csv", "text", "label")
    with (tmp_path / "test.csv").open(encoding="utf-8") as handle:
        truth = [row["label"] for row in csv.DictReader(handle)]
    oos = [line["needs_review"] for line, label in zip(lines, truth, strict=True) if label == "oos"]
    in_scope = [
        line["label"] == label and not line["needs_review"]
        for line, label in zip(lines, truth, strict=True)
        if label != "oos"
    ]
    assert sum(oos) / len(oos) > 0.5
    assert sum(in_scope) / len(in_scope) > 0.8


def test_chinese_sentiment_learns_from_real_reviews(tmp_path: Path) -> None:
    with (SHARED / "zh_shopping" / "dev.csv").open(encoding="utf-8") as handle:
        rows = [[row["cat"], row["label"], row["review"]] for row in csv.DictReader(handle)]
    (tmp_path / "zh_shopping").mkdir()
    write_rows(tmp_path / "zh_shopping" / "dev.csv", ["cat", "label", "review"], rows[::8])
    project_dir = Path(__file__).resolve().parents[2]
    sentiment = train_sentiment(tmp_path, project_dir / "data" / "triage", project_dir=project_dir)
    trained = [row for row in rows[::8] if not zh_shopping_held_out(row[2])]
    assert sentiment.source.startswith(f"zh_shopping ({len(trained)} reviews, 20% held out)")
    held_out = rows[3::50]
    scores = [sentiment.negativity(review, "zh") for _, _, review in held_out]
    assert roc_auc_score([label == "0" for _, label, _ in held_out], scores) > 0.85
