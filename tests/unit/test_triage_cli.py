"""``kefu triage train / predict / convert-clinc`` on small files, and the data readers' errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from router.cli import app
from router.errors import InvalidInput
from router.triage.datasets import convert_clinc, read_texts

COMPLAINTS = Path(__file__).resolve().parents[2] / "data" / "triage" / "complaints.csv"
runner = CliRunner(mix_stderr=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained through the CLI on our complaint CSV."""
    out = tmp_path_factory.mktemp("cli") / "model"
    result = runner.invoke(
        app,
        ["triage", "train", "--data", str(COMPLAINTS), "--text-column", "text", "--label-column", "category",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["examples"] == len(read_texts(COMPLAINTS, "text")[0])
    return out


def test_predict_prints_one_json_object_per_record(trained: Path, tmp_path: Path) -> None:
    data = tmp_path / "messages.jsonl"
    messages = [{"msg": "my parcel never arrived"}, {"msg": ""}, {"msg": "信用卡被盗刷了"}]
    data.write_text("\n".join(json.dumps(m, ensure_ascii=False) for m in messages), encoding="utf-8")
    result = runner.invoke(
        app, ["triage", "predict", "--model", str(trained), "--data", str(data), "--text-column", "msg"]
    )
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[0]["label"] == "delivery" and set(lines[0]) == {"label", "confidence", "needs_review", "terms"}
    assert lines[1] == {"label": None, "error": "empty text"}
    assert lines[2]["label"] == "fraud_security" and 0 <= lines[2]["confidence"] <= 1


def test_cli_errors_name_the_problem(trained: Path, tmp_path: Path) -> None:
    missing_column = runner.invoke(
        app, ["triage", "predict", "--model", str(trained), "--data", str(COMPLAINTS), "--text-column", "body"]
    )
    assert missing_column.exit_code == 1
    assert "has no column 'body' (it has: text, category, language)" in missing_column.stderr
    wrong_label = runner.invoke(
        app,
        ["triage", "train", "--data", str(COMPLAINTS), "--text-column", "text", "--label-column", "intent",
         "--out", str(tmp_path / "m")],
    )  # fmt: skip
    assert wrong_label.exit_code == 1 and "no column 'intent'" in wrong_label.stderr
    assert not (tmp_path / "m").exists()
    not_a_model = runner.invoke(
        app, ["triage", "predict", "--model", str(tmp_path), "--data", str(COMPLAINTS), "--text-column", "text"]
    )
    assert not_a_model.exit_code == 1 and "not a triage model directory" in not_a_model.stderr


def test_readers_refuse_binary_malformed_and_empty_input(tmp_path: Path) -> None:
    binary = tmp_path / "image.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xd8\xff")
    with pytest.raises(InvalidInput, match="not UTF-8 text"):
        read_texts(binary, "text")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok", "label": "a"}\n{not json\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="line 2 is not JSON"):
        read_texts(broken, "text", "label")
    empty_text = tmp_path / "empty.csv"
    empty_text.write_text("text,label\nhello,a\n,b\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="record 2 has an empty 'text'"):
        read_texts(empty_text, "text", "label")
    with pytest.raises(InvalidInput, match="does not exist"):
        read_texts(tmp_path / "nope.csv", "text")
    (tmp_path / "header-only.csv").write_text("text,label\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="has no records"):
        read_texts(tmp_path / "header-only.csv", "text")


def test_clinc_json_converts_to_a_trainable_csv(tmp_path: Path) -> None:
    source = tmp_path / "clinc.json"
    source.write_text(
        json.dumps({"train": [["book a flight", "book_flight"]], "oos_train": [["how old is the moon", "oos"]]}),
        encoding="utf-8",
    )
    out = tmp_path / "clinc.csv"
    assert convert_clinc(source, out) == 2
    with out.open(encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [
            ["text", "label"],
            ["book a flight", "book_flight"],
            ["how old is the moon", "oos"],
        ]
    with pytest.raises(InvalidInput, match="has no val"):
        convert_clinc(source, out, ("val",))
