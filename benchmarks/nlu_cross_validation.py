"""NLU cross-validation of the assistant on seeded folds: per-intent F1, macro-F1 (target >= 0.90), fallbacks.

``python -m benchmarks.nlu_cross_validation [--folds 5] [--seeds 0 1 2] [--config config.yml]``

Each fold is trained and parsed exactly as ``rasa test nlu --cross-validation`` does it (``train_nlu`` on the fold's
examples, then the loaded model's ``parse_message`` on the held-out ones), but the folds come from a seeded
``StratifiedKFold``: Rasa's own are unseeded, so two runs of it differ by up to 0.006 macro-F1 and a change could
not be told from a reshuffle. Every seed sees the same folds for every config and data change that keeps the examples.

Two scores are kept apart:

* ``rasa`` scores like ``rasa test nlu``: a ``nlu_fallback`` is undone once, so the intent behind it counts;
* ``deployed`` scores what the bot does: a ``nlu_fallback`` (asking to rephrase) counts as a miss of the true intent.

Real customers' sentences imported from public sets (``data/nlu/en_public.yml``) are in every fold like the rest;
``macro_f1_deployed_own_examples`` scores the team's own examples alone, so the figure stays comparable with the
rounds before the import.

The FallbackClassifier only reorders the classifier's ranking, so its thresholds are replayed on the recorded
rankings (a grid of ambiguity thresholds at the configured threshold, and of thresholds at the configured ambiguity),
without retraining, to choose them by cross-validation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.rasa_quiet import quiet_rasa

if TYPE_CHECKING:  # Rasa is imported lazily: loading it takes seconds
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NLU_DATA = PROJECT_ROOT / "data" / "nlu"
TARGET_MACRO_F1 = 0.90
FALLBACK = "nlu_fallback"
# Our own components mark a message they refuse to classify (unknown Latin text, bad input) with confidence 1.0;
# the FallbackClassifier marks its own with its threshold, below 1.
RULE_FALLBACK_CONFIDENCE = 1.0
AMBIGUITY_GRID = (0.0, 0.02, 0.05, 0.1, 0.15)
THRESHOLD_GRID = (0.0, 0.2, 0.25, 0.3, 0.35, 0.4)
# Real customers' sentences from public sets (data/nlu/README.md): trained on in every fold, scored apart.
IMPORTED_FILE = "en_public.yml"


@dataclass(frozen=True)
class Prediction:
    """One held-out example and what the trained model made of it."""

    text: str
    target: str
    language: str
    deployed: str
    ranking: tuple[tuple[str, float], ...]  # the classifier's own ranking, fallback entries removed
    refused: bool  # our rules (unknown words, bad input) sent it to the fallback, whatever the thresholds

    @property
    def top(self) -> str:
        """The classifier's first choice, fallback or not."""
        return self.ranking[0][0] if self.ranking else FALLBACK

    def with_fallback(self, threshold: float, ambiguity: float) -> str:
        """The intent the bot would act on under these FallbackClassifier settings (Rasa's rule, replayed)."""
        if self.refused or not self.ranking:
            return FALLBACK
        first = self.ranking[0][1]
        second = self.ranking[1][1] if len(self.ranking) > 1 else 0.0
        return FALLBACK if first < threshold or first - second < ambiguity else self.top


def stratified_folds(
    examples: list[Message], labels: list[str], folds: int, seed: int
) -> Iterator[tuple[list[Message], list[Message]]]:
    """The (train, test) example lists of each fold, stratified by intent and fixed by the seed."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_index, test_index in splitter.split(examples, labels):
        yield [examples[i] for i in train_index], [examples[i] for i in test_index]


def fold_data(data: TrainingData, examples: list[Message]) -> TrainingData:
    """A TrainingData of ``examples`` that keeps the regexes, lookups and synonyms, as Rasa's CV does."""
    from rasa.shared.nlu.training_data.training_data import TrainingData

    return TrainingData(
        training_examples=examples,
        entity_synonyms=data.entity_synonyms,
        regex_features=data.regex_features,
        lookup_tables=data.lookup_tables,
        responses=data.responses,
    )


async def predict_fold(
    config: Path, data: TrainingData, train: list[Message], test: list[Message], work: Path
) -> list[Prediction]:
    """Train on ``train`` the way ``rasa train nlu`` does and parse every ``test`` example with the loaded model."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.model_training import train_nlu
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter

    from bot.nlu.language import detect_language

    data_file = work / "fold.yml"
    RasaYAMLWriter().dump(data_file, fold_data(data, train))
    model = train_nlu(str(config), str(data_file), str(work))
    processor = Agent.load(model).processor
    predictions = []
    for example in test:
        text = example.get("text")
        result = await processor.parse_message(UserMessage(text=text), only_output_properties=False)
        ranking = result.get("intent_ranking") or []
        predictions.append(
            Prediction(
                text=text,
                target=example.get("intent"),
                language=detect_language(text) or "none",
                deployed=result["intent"]["name"],
                ranking=tuple((r["name"], float(r["confidence"])) for r in ranking if r["name"] != FALLBACK),
                refused=any(r["name"] == FALLBACK and r["confidence"] >= RULE_FALLBACK_CONFIDENCE for r in ranking),
            )
        )
    Path(model).unlink()
    return predictions


def rasa_scored(prediction: Prediction) -> str:
    """What ``rasa test nlu`` counts: one fallback layer undone, as its ``undo_fallback_prediction`` does."""
    return prediction.top if prediction.deployed == FALLBACK else prediction.deployed


def f1_report(targets: list[str], predicted: list[str], intents: list[str]) -> dict[str, dict[str, float]]:
    """Per-intent precision/recall/F1 plus the macro average over the intents (a fallback only lowers recall)."""
    from sklearn.metrics import classification_report

    return classification_report(targets, predicted, labels=intents, output_dict=True, zero_division=0)


def intent_language_counts(data: TrainingData) -> dict[str, dict[str, int]]:
    """Distinct examples per intent and language, to check the 40-a-language floor of the annotation guide."""
    from bot.nlu.language import detect_language

    counts: dict[str, Counter] = {}
    for example in data.intent_examples:
        language = detect_language(example.get("text")) or "none"
        counts.setdefault(example.get("intent"), Counter())[language] += 1
    return {intent: dict(sorted(counter.items())) for intent, counter in sorted(counts.items())}


def load_nlu_data() -> TrainingData:
    """All of data/nlu's YAML files as one TrainingData (the README beside them is not data)."""
    from rasa.shared.nlu.training_data.loading import load_data

    first, *rest = [load_data(str(path)) for path in sorted(NLU_DATA.glob("*.yml"))]
    return first.merge(*rest)


def run(config: Path, folds: int, seeds: list[int]) -> dict[int, list[Prediction]]:
    """Every seed's held-out predictions, each fold trained from scratch."""
    data = load_nlu_data()
    examples = data.intent_examples
    labels = [example.get_full_intent() for example in examples]
    results: dict[int, list[Prediction]] = {}
    for seed in seeds:
        results[seed] = []
        for train, test in stratified_folds(examples, labels, folds, seed):
            with tempfile.TemporaryDirectory() as work:
                results[seed] += asyncio.run(predict_fold(config, data, train, test, Path(work)))
    return results


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min, max and each seed's value (in seed order), rounded for the report."""
    deviation = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.mean(values), 4), "sd": round(deviation, 4), "min": round(min(values), 4),
            "max": round(max(values), 4), "per_seed": [round(value, 4) for value in values]}  # fmt: skip


def summarise(results: dict[int, list[Prediction]], threshold: float, ambiguity: float) -> dict:
    """Per-seed and mean figures: both scorings, per-intent F1, per language, fallbacks and the threshold replay."""
    any_seed = next(iter(results.values()))
    intents = sorted({p.target for p in any_seed})
    per_seed = {"rasa": [], "deployed": [], "accuracy": [], "fallbacks": [], "fallbacks_right_top1": []}
    per_intent: dict[str, list[float]] = {intent: [] for intent in intents}
    per_language: dict[str, list[float]] = {}
    replay: dict[str, list[float]] = {str(a): [] for a in AMBIGUITY_GRID}
    replay_threshold: dict[str, list[float]] = {str(t): [] for t in THRESHOLD_GRID}
    for predictions in results.values():
        targets = [p.target for p in predictions]
        rasa = f1_report(targets, [rasa_scored(p) for p in predictions], intents)
        deployed_labels = [p.deployed for p in predictions]
        deployed = f1_report(targets, deployed_labels, intents)
        per_seed["rasa"].append(rasa["macro avg"]["f1-score"])
        per_seed["deployed"].append(deployed["macro avg"]["f1-score"])
        per_seed["accuracy"].append(sum(t == d for t, d in zip(targets, deployed_labels, strict=True)) / len(targets))
        fallbacks = [p for p in predictions if p.deployed == FALLBACK]
        per_seed["fallbacks"].append(len(fallbacks))
        per_seed["fallbacks_right_top1"].append(sum(p.top == p.target for p in fallbacks))
        for intent in intents:
            per_intent[intent].append(deployed[intent]["f1-score"])
        for language in sorted({p.language for p in predictions} - {"none"}):
            chosen = [p for p in predictions if p.language == language]
            report = f1_report([p.target for p in chosen], [p.deployed for p in chosen], intents)
            per_language.setdefault(language, []).append(report["macro avg"]["f1-score"])
        for value in AMBIGUITY_GRID:
            replayed = [p.with_fallback(threshold, value) for p in predictions]
            replay[str(value)].append(f1_report(targets, replayed, intents)["macro avg"]["f1-score"])
        for value in THRESHOLD_GRID:
            replayed = [p.with_fallback(value, ambiguity) for p in predictions]
            replay_threshold[str(value)].append(f1_report(targets, replayed, intents)["macro avg"]["f1-score"])
    consistent = all(p.deployed == p.with_fallback(threshold, ambiguity) for ps in results.values() for p in ps)
    return {
        "macro_f1_rasa": spread(per_seed["rasa"]),
        "macro_f1_deployed": spread(per_seed["deployed"]),
        "accuracy_deployed": spread(per_seed["accuracy"]),
        "fallbacks_per_run": per_seed["fallbacks"],
        "fallbacks_right_top1": per_seed["fallbacks_right_top1"],
        "per_intent_f1_deployed": {intent: round(statistics.mean(v), 3) for intent, v in per_intent.items()},
        "macro_f1_deployed_by_language": {lang: spread(v) for lang, v in per_language.items()},
        f"macro_f1_deployed_by_ambiguity_at_threshold_{threshold}": {a: spread(v)["mean"] for a, v in replay.items()},
        f"macro_f1_deployed_by_threshold_at_ambiguity_{ambiguity}": {
            t: spread(v)["mean"] for t, v in replay_threshold.items()
        },
        "replay_matches_model": consistent,
    }


def own_examples_macro_f1(results: dict[int, list[Prediction]], imported: set[str]) -> dict[str, float] | None:
    """Deployed macro-F1 on the team's own examples only, folds trained on everything: comparable across imports."""
    if not imported:
        return None
    values = []
    for predictions in results.values():
        own = [p for p in predictions if p.text not in imported]
        intents = sorted({p.target for p in own})
        values.append(f1_report([p.target for p in own], [p.deployed for p in own], intents)["macro avg"]["f1-score"])
    return spread(values)


def imported_texts() -> set[str]:
    """The sentences of the generated public-data file (``kefu data import-public``), not the team's own."""
    from rasa.shared.nlu.training_data.loading import load_data

    path = NLU_DATA / IMPORTED_FILE
    return {example.get("text") for example in load_data(str(path)).intent_examples} if path.exists() else set()


def fallback_settings(config: Path) -> tuple[float, float]:
    """The FallbackClassifier's threshold and ambiguity threshold in ``config`` (Rasa's defaults where unset)."""
    import yaml

    pipeline = yaml.safe_load(config.read_text(encoding="utf-8"))["pipeline"]
    fallback = next(component for component in pipeline if component["name"] == "FallbackClassifier")
    return float(fallback.get("threshold", 0.3)), float(fallback.get("ambiguity_threshold", 0.1))


def main() -> None:
    """Print per-intent/language counts and the figures, then one JSON line of them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "config.yml")
    parser.add_argument("--errors", type=Path, help="write the first seed's misclassified examples to this JSON file")
    args = parser.parse_args()
    os.chdir(PROJECT_ROOT)  # the config's jieba dictionary path is relative to the project
    quiet_rasa()
    config = args.config.resolve()
    threshold, ambiguity = fallback_settings(config)

    counts = intent_language_counts(load_nlu_data())
    started = time.perf_counter()
    results = run(config, args.folds, args.seeds)
    seconds = time.perf_counter() - started
    figures = summarise(results, threshold, ambiguity)
    figures["macro_f1_deployed_own_examples"] = own_examples_macro_f1(results, imported_texts())
    if args.errors:
        first = next(iter(results.values()))
        wrong = [p.__dict__ | {"top": p.top} for p in first if p.deployed != p.target]
        args.errors.write_text(json.dumps(wrong, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{'intent':<16} {'zh':>4} {'en':>4} {'f1':>6}")
    for intent, f1 in figures["per_intent_f1_deployed"].items():
        print(f"{intent:<16} {counts[intent].get('zh', 0):>4} {counts[intent].get('en', 0):>4} {f1:>6.3f}")
    macro = figures["macro_f1_rasa"]["mean"]
    summary = {
        "config": args.config.name,
        "folds": args.folds,
        "seeds": args.seeds,
        "examples": sum(sum(c.values()) for c in counts.values()),
        "fallback_threshold": threshold,
        "ambiguity_threshold": ambiguity,
        "macro_f1": macro,
        "target_macro_f1": TARGET_MACRO_F1,
        "meets_target": macro >= TARGET_MACRO_F1,
        **figures,
        "examples_per_intent_language": counts,
        "seconds_total": round(seconds, 1),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }
    print(json.dumps(summary, ensure_ascii=False))


if __name__ == "__main__":
    main()
