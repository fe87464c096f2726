"""NLU cross-validation of the assistant: per-intent precision/recall/F1, macro-F1 (target >= 0.90), training time.

``python -m benchmarks.nlu_cross_validation [--folds 5] [--config config.yml]`` runs Rasa's own
``rasa test nlu --cross-validation`` on data/nlu, so the figures are what Rasa itself reports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RASA = str(Path(sys.executable).with_name("rasa"))
TARGET_MACRO_F1 = 0.90
SUMMARY_KEYS = ("accuracy", "macro avg", "weighted avg", "micro avg")


def cross_validate(config: Path, folds: int, out_dir: Path) -> tuple[dict, int]:
    """Run Rasa's cross-validation; return its intent report (test folds merged) and how many went to fallback."""
    command = [RASA, "test", "nlu", "--nlu", "data/nlu", "--config", str(config), "--cross-validation"]
    command += ["--folds", str(folds), "--out", str(out_dir), "--no-plot"]
    env = {"RASA_TELEMETRY_ENABLED": "false", "PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(PROJECT_ROOT)}
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True, capture_output=True)
    report = json.loads((out_dir / "intent_report.json").read_text(encoding="utf-8"))
    errors_file = out_dir / "intent_errors.json"
    errors = json.loads(errors_file.read_text(encoding="utf-8")) if errors_file.exists() else []
    # Below the FallbackClassifier threshold the bot asks to rephrase: an error, but not a wrong answer.
    fallbacks = sum(1 for error in errors if error["intent_prediction"]["name"] == "nlu_fallback")
    return report, fallbacks


def main() -> None:
    """Print the per-intent table, then one JSON line of figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "config.yml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        report, fallbacks = cross_validate(args.config, args.folds, Path(out))
        seconds = time.perf_counter() - started
    intents = {name: figures for name, figures in report.items() if name not in SUMMARY_KEYS}
    print(f"{'intent':<16} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}")
    for name, figures in sorted(intents.items()):
        print(
            f"{name:<16} {figures['precision']:>9.3f} {figures['recall']:>7.3f} "
            f"{figures['f1-score']:>6.3f} {figures['support']:>7}"
        )
    macro_f1 = report["macro avg"]["f1-score"]
    figures = {
        "config": args.config.name,
        "folds": args.folds,
        "examples": sum(int(f["support"]) for f in intents.values()),
        "macro_f1": round(macro_f1, 4),
        "accuracy": round(report.get("accuracy", report.get("micro avg", {}).get("f1-score", 0.0)), 4),
        "predicted_fallback": fallbacks,
        "target_macro_f1": TARGET_MACRO_F1,
        "meets_target": macro_f1 >= TARGET_MACRO_F1,
        "seconds_total": round(seconds, 1),
        "per_intent_f1": {name: round(f["f1-score"], 3) for name, f in sorted(intents.items())},
    }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
