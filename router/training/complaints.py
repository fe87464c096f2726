"""The complaint model's part of a retraining: its data, the held-back complaints, training, and its gate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from router.bootstrap import Kefu
from router.training import registry
from router.training.export import REVIEWED_COMPLAINTS, SHIPPED_COMPLAINTS
from router.training.gate import GateReport, judge
from router.training.inbox import normalise
from router.training.rasa_runner import LogSink, Prediction
from router.training.staging import held_back_mask
from router.triage.classifier import OUT_OF_SCOPE, OUT_OF_SCOPE_ALIASES, TriageClassifier
from router.triage.datasets import read_texts
from router.triage.risk import RiskClassifier
from router.triage.sentiment import Sentiment
from router.triage.store import IncompatibleModel, load_artifact
from router.triage.training import public_complaints, train_model_dir, train_risk, train_sentiment

Model = TypeVar("Model")


@dataclass(frozen=True)
class Complaints:
    """Complaint texts and their categories, in step."""

    texts: list[str]
    categories: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def _where(self, keep: list[bool]) -> Complaints:
        rows = [
            (text, category) for text, category, kept in zip(self.texts, self.categories, keep, strict=True) if kept
        ]
        return Complaints([text for text, _ in rows], [category for _, category in rows])

    def split(self) -> tuple[Complaints, Complaints]:
        """(train, held back): the intent gate's stable text-hash split, within every category."""
        mask = held_back_mask(self.texts, self.categories)
        return self._where([not held for held in mask]), self._where(mask)

    def without(self, other: Complaints) -> Complaints:
        """These complaints minus any whose text is in ``other``: a candidate never trains on what judges it."""
        excluded = {normalise(text) for text in other.texts}
        return self._where([normalise(text) not in excluded for text in self.texts])


@dataclass(frozen=True)
class ComplaintCandidate:
    """A newly trained complaint model directory and its training figures."""

    path: Path
    metrics: dict[str, Any]


def read_complaints(data_dir: Path) -> Complaints:
    """The shipped complaints plus the agents' corrections, a correction winning over the same text."""
    shipped, reviewed = data_dir / SHIPPED_COMPLAINTS, data_dir / REVIEWED_COMPLAINTS
    if not shipped.exists():
        return Complaints([], [])
    by_text: dict[str, tuple[str, str]] = {}
    # The export always writes the header; a file with nothing under it has no corrections yet.
    has_corrections = reviewed.exists() and len(reviewed.read_text(encoding="utf-8").splitlines()) > 1
    for path in (shipped, reviewed) if has_corrections else (shipped,):
        texts, labels = read_texts(path, "text", "category")
        by_text.update((normalise(text), (text, label)) for text, label in zip(texts, labels, strict=True))
    return Complaints([text for text, _ in by_text.values()], [label for _, label in by_text.values()])


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else str(value)


def _active_row(kefu: Kefu) -> tuple[Path, dict[str, Any]] | None:
    return registry.active_on_this_machine(kefu.reader, registry.TRIAGE, kefu.settings.models_dir)


def _reusable(active: Path, name: str, kind: type[Model], log: LogSink) -> Model | None:
    """One of the active model's parts, or None when it cannot be read (then it is trained afresh)."""
    try:
        return load_artifact(active, name, kind)
    except IncompatibleModel as error:
        # Retraining is how an unreadable active model gets replaced, so it must not stop the retraining.
        log(f"the active model's {name} cannot be reused ({error}): training it afresh")
        return None


def train_candidate(
    kefu: Kefu, data_dir: Path, heldout: Complaints, version: str, log: LogSink
) -> ComplaintCandidate | None:
    """Train a complaint model on ``data_dir``'s complaints minus every held-back one; None without complaint data."""
    complaints = read_complaints(data_dir)
    if not complaints:
        log(f"no complaint data in {data_dir / 'triage'}: the complaint model is not retrained")
        return None
    own = complaints.split()[0].without(heldout)
    # Real complaints from the public sets train the candidate too; only our own complaints judge it.
    public_texts, public_categories = public_complaints(data_dir, project_dir=kefu.settings.project_dir)
    train = Complaints(own.texts + public_texts, own.categories + public_categories)
    active = _active_row(kefu)
    active_dir = active[0] if active is not None and active[0].exists() else None
    # Sentiment does not depend on the labels reviewed here: reusing it saves a minute of training.
    sentiment = _reusable(active_dir, "sentiment", Sentiment, log) if active_dir is not None else None
    if sentiment is None:
        sentiment = train_sentiment(
            kefu.settings.shared_data_dir, data_dir / "triage", project_dir=kefu.settings.project_dir
        )
    # The risk model is reused only when its examples have not changed (e.g. no new safety complaint).
    reusable_risk = _reusable(active_dir, "risk", RiskClassifier, log) if active_dir is not None else None
    risk = train_risk(
        data_dir / "triage", kefu.settings.shared_data_dir, reusable_risk, project_dir=kefu.settings.project_dir
    )
    out_dir = registry.version_path(kefu.settings.models_dir, registry.TRIAGE, version)
    # numpy numbers in the trainer's figures become plain JSON for the registry row.
    trained = train_model_dir(train.texts, train.categories, out_dir, sentiment, risk)
    metrics = json.loads(json.dumps(trained, default=_plain))
    log(
        f"complaint model trained on {len(own)} of {len(complaints)} complaints (rest held back) and "
        f"{len(public_texts)} public ones, in {out_dir}"
    )
    return ComplaintCandidate(out_dir, metrics)


def _canonical(category: str) -> str:
    # The classifier learns every "none of the above" spelling as one label; the expected labels must match it.
    return OUT_OF_SCOPE if category.strip().lower() in OUT_OF_SCOPE_ALIASES else category


def predictions(model_dir: Path, heldout: Complaints) -> list[Prediction]:
    """What the complaint model in ``model_dir`` says each held-back complaint is about."""
    classifier = load_artifact(model_dir, "classifier", TriageClassifier)
    predicted = classifier.predict(heldout.texts, explain=0)
    return [
        Prediction(text, _canonical(expected), prediction.label, prediction.confidence)
        for text, expected, prediction in zip(heldout.texts, heldout.categories, predicted, strict=True)
    ]


def _previous_predictions(kefu: Kefu, heldout: Complaints) -> tuple[list[Prediction] | None, str]:
    active = _active_row(kefu)
    if active is None or not active[0].exists():
        return None, "no active complaint model to compare with"
    path, metrics = active
    if "gate" not in metrics:
        # Trained before complaints were held back: it has seen the held-back complaints, so it would win unfairly.
        return None, "the active complaint model was trained on the held-back complaints too: not compared"
    try:
        return predictions(path, heldout), ""
    except IncompatibleModel as error:
        return None, f"the active complaint model cannot be read ({error}): not compared"


def gate(kefu: Kefu, candidate: Path, heldout: Complaints, tolerance: float) -> GateReport:
    """The candidate and the active complaint model side by side on the same held-back complaints."""
    if not heldout:
        return judge([], None, tolerance, "no held-back complaints (every category has too few examples)")
    previous, why_not = _previous_predictions(kefu, heldout)
    return judge(predictions(candidate, heldout), previous, tolerance, why_not)
