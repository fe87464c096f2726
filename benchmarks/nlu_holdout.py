"""Independent held-out NLU check (issue 4): the active model on messages written without reading the training data.

``python -m benchmarks.nlu_holdout [--data benchmarks/data/nlu_holdout.yml] [--model PATH]`` parses every held-out
message with the model kefu serves (``models/nlu/active.tar.gz``, the link promotion moves), prints per-intent
precision/recall/F1 overall and per language, the misclassified messages, and last one JSON line of figures.
Cross-validation (``benchmarks.nlu_cross_validation``) is optimistic because cue words were written while looking at
its errors; this set never feeds training or tuning, so it is the honest figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from benchmarks.rasa_quiet import quiet_rasa
from router.settings import Settings
from router.training import registry
from router.training.inbox import normalise
from router.training.nlu_yaml import plain_text, read_nlu_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOLDOUT_DATA = PROJECT_ROOT / "benchmarks" / "data" / "nlu_holdout.yml"
LANGUAGES = ("zh", "en")
FALLBACK_INTENT = "nlu_fallback"


@dataclass(frozen=True)
class HeldOutMessage:
    """One held-out customer message with the intent a person gave it and the language it is counted under."""

    text: str
    intent: str
    language: str


@dataclass(frozen=True)
class Prediction:
    """What the model made of one held-out message."""

    message: HeldOutMessage
    intent: str
    confidence: float

    @property
    def correct(self) -> bool:
        """Only the labelled intent counts: a fallback (the bot asks to rephrase) is a miss too."""
        return self.intent == self.message.intent


@dataclass(frozen=True)
class Scores:
    """Per-intent and summary figures over one set of predictions."""

    per_intent: dict[str, dict[str, float]]
    accuracy: float
    macro_f1: float
    messages: int


def load_holdout(path: Path) -> list[HeldOutMessage]:
    """The held-out messages, read with Rasa's own reader so the file is checked as real NLU data."""
    from rasa.shared.nlu.training_data.loading import load_data

    messages = []
    for example in load_data(str(path)).intent_examples:
        language = (example.get("metadata") or {}).get("intent", {}).get("lang")
        if language not in LANGUAGES:
            raise ValueError(f"{path}: {example.get('text')!r} needs metadata lang zh or en on its intent block")
        messages.append(HeldOutMessage(example.get("text"), example.get("intent"), language))
    if not messages:
        raise ValueError(f"{path} holds no intent examples")
    return messages


def active_model_path(settings: Settings) -> Path:
    """The NLU model kefu serves: the stable link ``kefu run`` hands Rasa and every promotion moves."""
    link = registry.active_link(settings.models_dir, registry.NLU)
    if not link.exists():
        raise FileNotFoundError(f"no active NLU model at {link}: run `kefu train --if-missing` first")
    return link.resolve()


def predict(model_path: Path, messages: Sequence[HeldOutMessage]) -> list[Prediction]:
    """Parse every message with the trained model, in process, exactly as Rasa's server parses a turn."""
    quiet_rasa()
    from rasa.core.agent import Agent

    agent = Agent.load(str(model_path))

    async def parse_all() -> list[dict[str, Any]]:
        return [await agent.parse_message(message.text) for message in messages]

    return [
        Prediction(message, result["intent"]["name"], float(result["intent"]["confidence"]))
        for message, result in zip(messages, asyncio.run(parse_all()), strict=True)
    ]


def score(predictions: Sequence[Prediction]) -> Scores:
    """Precision/recall/F1 per labelled intent; predictions outside the labels (fallback) only cost recall."""
    gold = [p.message.intent for p in predictions]
    predicted = [p.intent for p in predictions]
    labels = sorted(set(gold))
    precision, recall, f1, support = precision_recall_fscore_support(gold, predicted, labels=labels, zero_division=0)
    per_intent = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    }
    macro_f1 = sum(figures["f1"] for figures in per_intent.values()) / len(per_intent)
    return Scores(per_intent, float(accuracy_score(gold, predicted)), macro_f1, len(predictions))


def training_overlap(messages: Sequence[HeldOutMessage], data_dir: Path) -> list[HeldOutMessage]:
    """Held-out messages that now also appear in the training data: each one makes this check less independent."""
    sources = sorted((data_dir / "nlu").glob("*.yml")) + sorted((data_dir / "reviewed").glob("*.yml"))
    trained = {normalise(plain_text(example.text)) for source in sources for example in read_nlu_file(source)[0]}
    return [message for message in messages if normalise(message.text) in trained]


@dataclass(frozen=True)
class Evaluation:
    """Every figure of one run: overall, per language, on the messages not in the training data, and the misses."""

    overall: Scores
    by_language: dict[str, Scores]
    unseen: Scores | None
    misses: list[Prediction]
    fallbacks: int
    in_training_data: int


def evaluate(predictions: Sequence[Prediction], overlap: Sequence[HeldOutMessage]) -> Evaluation:
    """Score the predictions overall, per language, and without the messages the model was also trained on."""
    seen = set(overlap)
    # Short turns ("ok", "谢谢") are bound to be in the training data too; the unseen rest is the stricter figure.
    unseen = [p for p in predictions if p.message not in seen]
    by_language = {
        language: score([p for p in predictions if p.message.language == language])
        for language in LANGUAGES
        if any(p.message.language == language for p in predictions)
    }
    return Evaluation(
        overall=score(predictions),
        by_language=by_language,
        unseen=score(unseen) if unseen else None,
        misses=[p for p in predictions if not p.correct],
        fallbacks=sum(1 for p in predictions if p.intent == FALLBACK_INTENT),
        in_training_data=len(seen),
    )


def print_report(evaluation: Evaluation, model: Path) -> None:
    """The per-intent table (with each language's F1), the summaries and every misclassified message."""
    languages = evaluation.by_language
    header = f"{'intent':<14} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}"
    print(f"model {model}\n{header}" + "".join(f" {'f1_' + language:>6}" for language in languages))
    for intent, figures in evaluation.overall.per_intent.items():
        line = f"{intent:<14} {figures['precision']:>9.3f} {figures['recall']:>7.3f} {figures['f1']:>6.3f}"
        line += f" {figures['support']:>7}"
        for scores in languages.values():
            f1 = scores.per_intent.get(intent, {}).get("f1")
            line += f" {f1:>6.3f}" if f1 is not None else f" {'-':>6}"
        print(line)
    unseen = [("unseen", evaluation.unseen)] if evaluation.unseen else []
    for name, scores in [("all", evaluation.overall), *languages.items(), *unseen]:
        print(f"{name:<6} accuracy {scores.accuracy:.3f}  macro-F1 {scores.macro_f1:.3f}  ({scores.messages} messages)")
    print(f"{evaluation.in_training_data} held-out messages also appear in data/nlu or data/reviewed")
    print(f"\nmisclassified ({len(evaluation.misses)}):")
    for miss in evaluation.misses:
        wrong = f"{miss.message.intent} -> {miss.intent} ({miss.confidence:.2f})"
        print(f"  [{miss.message.language}] {wrong}: {miss.message.text}")


def figures(evaluation: Evaluation, model: Path) -> dict[str, Any]:
    """The JSON line: the figures BENCHMARKS.md quotes, then what explains them."""
    result: dict[str, Any] = {
        "macro_f1": round(evaluation.overall.macro_f1, 4),
        "accuracy": round(evaluation.overall.accuracy, 4),
        **{f"macro_f1_{language}": round(s.macro_f1, 4) for language, s in evaluation.by_language.items()},
        "messages": evaluation.overall.messages,
    }
    if evaluation.unseen is not None:
        result["macro_f1_unseen"] = round(evaluation.unseen.macro_f1, 4)
        result["accuracy_unseen"] = round(evaluation.unseen.accuracy, 4)
    result["misclassified"] = len(evaluation.misses)
    result["predicted_fallback"] = evaluation.fallbacks
    result["in_training_data"] = evaluation.in_training_data
    result["model"] = model.name
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Print the report, then one JSON line of figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=HOLDOUT_DATA, help="held-out NLU YAML (lang metadata per block)")
    parser.add_argument("--model", type=Path, help="model .tar.gz (default: the active one kefu serves)")
    args = parser.parse_args(argv)
    settings = Settings()
    model = args.model.resolve() if args.model else active_model_path(settings)
    messages = load_holdout(args.data)
    predictions = predict(model, messages)
    evaluation = evaluate(predictions, training_overlap(messages, settings.data_dir))
    print_report(evaluation, model)
    print(json.dumps(figures(evaluation, model), ensure_ascii=False))


if __name__ == "__main__":
    main()
