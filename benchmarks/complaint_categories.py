"""Complaint categories on real text: the complaint classifier with and without the public sets' complaints.

Run: ``python -m benchmarks.complaint_categories``, under a minute. Trains ``TriageClassifier`` on four fifths of
our complaints (every fifth row held out), alone and with the public complaints the default model learns from
(router.triage.training.public_complaints: up to N rows per Banking77/CLINC150 label that data/public/mapping.yml
files under a category), for N in 0, 30 (what kefu uses), 100 and all. Scored on the held-out side of the public
sets (real English, never trained on, each row's category from mapping.yml) and on our held-out fifth.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from router.public_data.mapping import load_project_mapping
from router.public_data.sides import held_out_rows
from router.settings import get_settings
from router.triage.classifier import TriageClassifier
from router.triage.datasets import read_texts
from router.triage.training import PUBLIC_PER_LABEL, public_complaints

CAPS = (0, PUBLIC_PER_LABEL, 100, 100_000)


def accuracy(classifier: TriageClassifier, pairs: list[tuple[str, str]]) -> float:
    """Share of (text, category) pairs whose predicted category is right."""
    predicted = classifier.predict([text for text, _ in pairs], explain=0)
    return round(float(np.mean([p.label == label for p, (_, label) in zip(predicted, pairs, strict=True)])), 4)


def main() -> None:
    settings = get_settings()
    data = settings.data_dir
    texts, labels = read_texts(data / "triage" / "complaints.csv", "text", "category")
    pairs = list(zip(texts, labels, strict=True))
    own_train = [pair for index, pair in enumerate(pairs) if index % 5]
    own_test = [pair for index, pair in enumerate(pairs) if not index % 5]
    mapping = load_project_mapping(settings.project_dir, data)
    public_test = [
        (row.text, mapping.meaning(row).category)
        for row in held_out_rows(settings.shared_data_dir, data / "public")
        if mapping.meaning(row).category is not None
    ]
    figures = {}
    for cap in CAPS:
        extra_texts, extra_labels = public_complaints(data, cap, project_dir=settings.project_dir)
        classifier = TriageClassifier()
        started = time.perf_counter()
        classifier.fit([text for text, _ in own_train] + extra_texts, [label for _, label in own_train] + extra_labels)
        figures[f"public_per_label_{cap}"] = {
            "public_training_rows": len(extra_texts),
            "public_held_out_accuracy": accuracy(classifier, public_test),
            "own_held_out_accuracy": accuracy(classifier, own_test),
            "train_seconds": round(time.perf_counter() - started, 1),
        }
    print(
        json.dumps(
            {
                "benchmark": "complaint_categories",
                "public_held_out_messages": len(public_test),
                "own_held_out_messages": len(own_test),
                "figures": figures,
                "load_average": [round(load, 2) for load in os.getloadavg()],
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
