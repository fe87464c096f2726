"""The held-out NLU benchmark end to end: a real trained model parses a tiny set, the report counts its misses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.nlu_holdout import main
from tests.support.benchmark_runs import run_in_process
from tests.support.rasa_stack import trained_model

pytestmark = pytest.mark.rasa

# "再见" is deliberately labelled greet: whatever the model answers, it cannot be right, so it must be a miss.
TINY_SET = """version: "3.1"
nlu:
- intent: greet
  metadata:
    lang: zh
  examples: |
    - 再见
- intent: request_human
  metadata:
    lang: en
  examples: |
    - put me through to a human agent please
"""


def test_report_structure_and_a_wrong_label_counts_as_wrong(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "tiny.yml"
    data.write_text(TINY_SET, encoding="utf-8")
    run_in_process(main, ["--data", str(data), "--model", str(trained_model())])
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert list(result)[:5] == ["macro_f1", "accuracy", "macro_f1_zh", "macro_f1_en", "messages"]
    assert result["messages"] == 2
    assert result["misclassified"] >= 1 and result["accuracy"] <= 0.5 and result["macro_f1_zh"] == 0.0
    assert any(line.startswith("  [zh] greet -> ") and line.endswith(": 再见") for line in lines)
    assert any(line.startswith("greet ") for line in lines) and any(line.startswith("request_human ") for line in lines)
