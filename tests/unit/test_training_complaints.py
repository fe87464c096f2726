"""The complaint model's gate: held-back complaints, a worse model refused, an equal one passed, overrides audited."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.models import AuditEntry, ModelStatus
from router.errors import Conflict
from router.settings import PROJECT_ROOT
from router.training import complaints, registry
from router.training.gate import GateReport
from router.training.pipeline import needs_training
from router.triage.store import FORMAT_VERSION, IncompatibleModel, save_model_dir
from router.triage.training import train_model_dir, train_sentiment
from tests.support.crm import make_kefu
from tests.support.models import write_stand_in_rasa_model

TOLERANCE = 0.02


@pytest.fixture
def complaint_kefu(sqlite_url: str, tmp_path: Path) -> Kefu:
    """A kefu with its own copy of the shipped complaints; no public data sets, so sentiment trains in a second."""
    shutil.copytree(PROJECT_ROOT / "data" / "triage", tmp_path / "data" / "triage")
    kefu = make_kefu(
        sqlite_url,
        tmp_path,
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        shared_data_dir=tmp_path / "no-shared-data",
        rasa_url="http://127.0.0.1:9",
    )
    yield kefu
    kefu.dispose()


def _shifted_copy(source: Path, target: Path) -> Path:
    """The complaints with every category's rows filed under the next category: a deliberately bad candidate."""
    (target / "triage").mkdir(parents=True)
    shutil.copy(source / "triage" / "risk.csv", target / "triage" / "risk.csv")
    rows = list(csv.DictReader((source / "triage" / "complaints.csv").open(encoding="utf-8")))
    categories = sorted({row["category"] for row in rows})
    shifted = {category: categories[(index + 1) % len(categories)] for index, category in enumerate(categories)}
    with (target / "triage" / "complaints.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "category": shifted[row["category"]]} for row in rows)
    return target


def _train_and_gate(kefu: Kefu, data_dir: Path, version: str) -> GateReport:
    """What a retraining does for complaints: train without the held-back rows, judge, register (refused if worse)."""
    heldout = complaints.read_complaints(kefu.settings.data_dir).split()[1]
    candidate = complaints.train_candidate(kefu, data_dir, heldout, version, lambda _: None)
    assert candidate is not None
    report = complaints.gate(kefu, candidate.path, heldout, TOLERANCE)
    status = ModelStatus.candidate if report.passed else ModelStatus.refused
    metrics = {**candidate.metrics, "gate": report.as_dict()}
    with kefu.uow() as uow:
        registry.register(uow.session, registry.TRIAGE, version, candidate.path, "hash", metrics, status, None)
        uow.commit()
    return report


def _promote(kefu: Kefu, version: str, reason: str = "") -> None:
    registry.promote(kefu.uow, version, kefu.settings.models_dir, kefu.settings.rasa_url, None, reason)


def test_held_back_complaints_are_stable_stratified_and_never_trained_on(complaint_kefu: Kefu, tmp_path: Path) -> None:
    shipped = complaints.read_complaints(complaint_kefu.settings.data_dir)
    train, heldout = shipped.split()
    assert len(train) + len(heldout) == len(shipped)
    assert not {text.lower() for text in train.texts} & {text.lower() for text in heldout.texts}
    per_category, held_per_category = Counter(shipped.categories), Counter(heldout.categories)
    assert set(held_per_category) == set(per_category), "every category is represented in the held-back part"
    assert all(0.1 <= held_per_category[name] / count <= 0.3 for name, count in per_category.items())
    reordered = complaints.Complaints(shipped.texts[::-1], shipped.categories[::-1])
    assert sorted(reordered.split()[1].texts) == sorted(heldout.texts), "the split depends on the text only"

    # Trained on other data that happens to contain a held-back complaint: it is still left out.
    other = tmp_path / "other"
    (other / "triage").mkdir(parents=True)
    (other / "triage" / "complaints.csv").write_text(
        "text,category\n" + "".join(f"{text.replace(',', ' ')},x\n" for text in heldout.texts[:3]), encoding="utf-8"
    )
    assert not complaints.read_complaints(other).without(heldout)


def test_worse_complaint_model_is_refused_and_an_override_promotes_it_audited(
    complaint_kefu: Kefu, tmp_path: Path
) -> None:
    first = _train_and_gate(complaint_kefu, complaint_kefu.settings.data_dir, "v1")
    assert first.passed and first.previous is None
    assert first.candidate.examples > 150 and first.candidate.accuracy > 0.6
    _promote(complaint_kefu, "v1")

    worse = _train_and_gate(complaint_kefu, _shifted_copy(complaint_kefu.settings.data_dir, tmp_path / "bad"), "v2")

    assert not worse.passed
    assert worse.previous is not None and worse.previous.examples == worse.candidate.examples
    assert worse.candidate.accuracy < worse.previous.accuracy - TOLERANCE
    assert any(reason.startswith("accuracy fell") for reason in worse.reasons)
    assert min(worse.per_label_change.values()) < -0.5
    with pytest.raises(Conflict, match="needs a reason"):
        _promote(complaint_kefu, "v2")
    _promote(complaint_kefu, "v2", reason="categories were renamed on purpose")
    with complaint_kefu.uow() as uow:
        assert registry.active_model(uow.session, registry.TRIAGE).version == "v2"
        entry = uow.session.execute(select(AuditEntry).where(AuditEntry.action == "model.override")).scalar_one()
        assert entry.data["override_reason"] == "categories were renamed on purpose"
        assert entry.data["gate_reasons"][0].startswith("triage: accuracy fell")
    link = registry.active_link(complaint_kefu.settings.models_dir, registry.TRIAGE)
    assert link.resolve() == registry.version_path(complaint_kefu.settings.models_dir, registry.TRIAGE, "v2").resolve()


def test_equal_complaint_model_passes(complaint_kefu: Kefu) -> None:
    _train_and_gate(complaint_kefu, complaint_kefu.settings.data_dir, "v1")
    _promote(complaint_kefu, "v1")

    again = _train_and_gate(complaint_kefu, complaint_kefu.settings.data_dir, "v2")

    assert again.passed and again.previous is not None
    assert again.candidate.accuracy == again.previous.accuracy
    assert set(again.per_label_change.values()) == {0.0}


def test_active_model_trained_before_the_gate_is_not_compared(complaint_kefu: Kefu) -> None:
    data_dir = complaint_kefu.settings.data_dir
    heldout = complaints.read_complaints(data_dir).split()[1]
    # As versions did before the complaint gate: trained on every complaint, held-back ones included.
    shipped = complaints.read_complaints(data_dir)
    old = registry.version_path(complaint_kefu.settings.models_dir, registry.TRIAGE, "old")
    sentiment = train_sentiment(
        complaint_kefu.settings.shared_data_dir, data_dir / "triage", project_dir=complaint_kefu.settings.project_dir
    )
    metrics = train_model_dir(shipped.texts, shipped.categories, old, sentiment)
    with complaint_kefu.uow() as uow:
        registry.register(uow.session, registry.TRIAGE, "old", old, "hash", metrics, ModelStatus.candidate, None)
        uow.commit()
    _promote(complaint_kefu, "old")
    candidate = complaints.train_candidate(complaint_kefu, data_dir, heldout, "new", lambda _: None)

    report = complaints.gate(complaint_kefu, candidate.path, heldout, TOLERANCE)

    assert report.passed and report.previous is None
    assert "trained on the held-back complaints" in report.reasons[0]


def test_a_model_directory_holding_the_wrong_objects_is_refused(complaint_kefu: Kefu) -> None:
    data_dir, models_dir = complaint_kefu.settings.data_dir, complaint_kefu.settings.models_dir
    heldout = complaints.read_complaints(data_dir).split()[1]
    swapped = registry.version_path(models_dir, registry.TRIAGE, "swapped")
    sentiment = train_sentiment(
        complaint_kefu.settings.shared_data_dir, data_dir / "triage", project_dir=complaint_kefu.settings.project_dir
    )
    # Readable, current format, but each artifact is the other kind of model.
    save_model_dir(swapped, {"classifier": sentiment, "sentiment": {"negative": 0.9}}, {"metrics": {}})

    with pytest.raises(IncompatibleModel, match="holds a Sentiment, not a TriageClassifier"):
        complaints.gate(complaint_kefu, swapped, heldout, TOLERANCE)

    # As the active model it is neither compared with nor a source of sentiment, and retraining still works.
    with complaint_kefu.uow() as uow:
        metrics = {"gate": {}}
        registry.register(
            uow.session, registry.TRIAGE, "swapped", swapped, "hash", metrics, ModelStatus.candidate, None
        )
        uow.commit()
    _promote(complaint_kefu, "swapped")
    log: list[str] = []
    candidate = complaints.train_candidate(complaint_kefu, data_dir, heldout, "new", log.append)
    assert candidate is not None
    assert any("holds a dict, not a Sentiment" in line and "training it afresh" in line for line in log)
    report = complaints.gate(complaint_kefu, candidate.path, heldout, TOLERANCE)
    assert report.passed and report.previous is None
    assert "cannot be read" in report.reasons[0] and "not a TriageClassifier" in report.reasons[0]


def test_an_active_complaint_model_of_an_older_format_makes_train_if_missing_retrain(complaint_kefu: Kefu) -> None:
    models_dir = complaint_kefu.settings.models_dir
    assistant = write_stand_in_rasa_model(models_dir / "nlu.tar.gz", "an assistant model")
    current = registry.version_path(models_dir, registry.TRIAGE, "current")
    save_model_dir(current, {"classifier": {}}, {"metrics": {}})
    with complaint_kefu.uow() as uow:
        registry.register(uow.session, registry.NLU, "n1", assistant, "hash", {}, ModelStatus.active, None)
        registry.register(uow.session, registry.TRIAGE, "current", current, "hash", {}, ModelStatus.active, None)
        uow.commit()
    assert needs_training(complaint_kefu) is False
    # An upgrade that changed the model format: the active directory is now unreadable, so the next start retrains.
    manifest = current / "manifest.json"
    older = manifest.read_text(encoding="utf-8").replace(f'"format_version": {FORMAT_VERSION}', '"format_version": 1')
    manifest.write_text(older, encoding="utf-8")
    assert needs_training(complaint_kefu) is True
