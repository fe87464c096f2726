"""The short-messages benchmark end to end: a real trained model parses short reviews, each band counted apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.short_messages import main
from tests.support.benchmark_runs import run_in_process
from tests.support.rasa_stack import trained_model

pytestmark = pytest.mark.rasa

REVIEWS = """cat,label,review
手机,0,屏幕碎了要投诉
手机,0,质量太差了，我要退货
手机,1,很好
手机,1,物流很快，包装也好
手机,0,这条差评足足有十五个字那么长的呢
"""


def test_each_band_counts_its_own_reviews_and_longer_ones_are_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "zh_shopping").mkdir()
    (tmp_path / "zh_shopping" / "dev.csv").write_text(REVIEWS, encoding="utf-8")
    monkeypatch.setenv("KEFU_SHARED_DATA_DIR", str(tmp_path))
    run_in_process(main, ["--model", str(trained_model())])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    counted = {band: figures["messages"] for band, figures in result.items() if band != "model"}
    assert counted == {"negative_1_8": 1, "negative_9_14": 1, "positive_1_8": 1, "positive_9_14": 1}
    assert result["negative_1_8"]["complaint_share"] == 1.0  # "屏幕碎了要投诉" names a fault and says 投诉
    assert sum(result["positive_1_8"]["intents"].values()) == 1
