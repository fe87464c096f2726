"""Rasa 3.6's DIETClassifier on a triage benchmark split, trained and parsed through Rasa's own Python API.

Used by ``python -m benchmarks.triage --diet``. Rasa and TensorFlow are imported inside the functions: loading them
takes seconds and hundreds of megabytes the rest of the benchmark must not pay.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from benchmarks.triage import SEED, Task, score

if TYPE_CHECKING:
    from rasa.core.processor import MessageProcessor


def peak_rss_mb() -> float:
    """This process's own peak resident memory: getrusage's ru_maxrss would also count the parent's peak before the
    spawn (Linux carries it across fork and exec), VmHWM counts only the current program."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def capped(texts: Sequence[str], labels: Sequence[str], per_class: int) -> tuple[list[str], list[str]]:
    """The first ``per_class`` examples of each label, in the split's (already shuffled) order; 0 keeps all."""
    if per_class <= 0:
        return list(texts), list(labels)
    seen: Counter[str] = Counter()
    kept_texts, kept_labels = [], []
    for text, label in zip(texts, labels, strict=True):
        if seen[label] < per_class:
            seen[label] += 1
            kept_texts.append(text)
            kept_labels.append(label)
    return kept_texts, kept_labels


def pipeline_config(chinese: bool, epochs: int) -> dict[str, Any]:
    """The pipeline the benchmark compares: Rasa's usual DIET setup on word and character n-gram counts."""
    return {
        "recipe": "default.v1",
        "language": "zh" if chinese else "en",
        "assistant_id": "triage-benchmark",
        "pipeline": [
            {"name": "JiebaTokenizer" if chinese else "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
            {
                "name": "DIETClassifier",
                "epochs": epochs,
                # Rasa warns without it under its default cross-entropy loss and recommends it for generalisation.
                "constrain_similarities": True,
                "entity_recognition": False,
                "random_seed": SEED,
            },
        ],
        "policies": [],
    }


def write_training_data(path: Path, texts: Sequence[str], labels: Sequence[str]) -> None:
    """Rasa YAML NLU data of the texts, one intent per label."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    # Rasa's YAML holds one example per line, so line breaks inside a text become spaces.
    examples = [
        Message(data={"text": " ".join(text.split()), "intent": label})
        for text, label in zip(texts, labels, strict=True)
    ]
    RasaYAMLWriter().dump(path, TrainingData(training_examples=examples))


def predict_batch(processor: MessageProcessor, texts: Sequence[str]) -> list[str | None]:
    """Every text through the loaded model's NLU graph in one run, as Rasa's processor parses one message."""
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE

    target = processor.model_metadata.nlu_target
    results = processor.graph_runner.run(
        inputs={PLACEHOLDER_MESSAGE: [UserMessage(text=text) for text in texts]}, targets=[target]
    )
    return [(message.get("intent") or {}).get("name") for message in results[target]]


@dataclass
class DietRun:
    """DIET's figures on one task and the labels it predicted for the test texts, in order."""

    figures: dict[str, Any]
    predicted: list[str | None]


def run_diet(task: Task, epochs: int, max_per_class: int) -> DietRun:
    """Train DIET on the task's training part (capped per class) and score its predictions on the test part."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.model_training import train_nlu

    texts, labels = capped(task.train_texts, task.train_labels, max_per_class)
    with tempfile.TemporaryDirectory(prefix="triage-diet-") as work:
        config, data = Path(work) / "config.yml", Path(work) / "nlu.yml"
        config.write_text(yaml.safe_dump(pipeline_config(task.chinese, epochs), allow_unicode=True), encoding="utf-8")
        write_training_data(data, texts, labels)
        started = time.perf_counter()
        model = train_nlu(str(config), str(data), work)
        train_seconds = time.perf_counter() - started
        if model is None:
            raise RuntimeError(f"Rasa trained no DIET model for {task.name}")
        model_mb = Path(model).stat().st_size / 2**20
        started = time.perf_counter()
        processor = Agent.load(model).processor
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        predicted = predict_batch(processor, task.test_texts)
        batch_ms = (time.perf_counter() - started) / len(task.test_texts) * 1000
        single = []
        loop = asyncio.new_event_loop()
        try:
            for text in task.test_texts[:200]:
                started = time.perf_counter()
                loop.run_until_complete(processor.parse_message(UserMessage(text=text)))
                single.append(time.perf_counter() - started)
        finally:
            loop.close()
    figures: dict[str, Any] = score(task, predicted)
    figures.update(
        epochs=epochs,
        diet_train_examples=len(texts),
        diet_max_per_class=max_per_class if len(texts) < len(task.train_texts) else None,
        train_seconds=round(train_seconds, 2),
        load_seconds=round(load_seconds, 2),
        predict_ms_batch=round(batch_ms, 4),
        predict_ms_single=round(statistics.median(single) * 1000, 3),
        model_mb=round(model_mb, 1),
        peak_rss_mb=peak_rss_mb(),
    )
    return DietRun(figures, predicted)
