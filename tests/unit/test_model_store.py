"""The model store: packing is deterministic, bad input and missing or damaged bytes get clear errors, and a
machine that did not train a model loads it from the store (the action server's complaint model, a retrain's
gate on another worker)."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from router.bootstrap import Kefu
from router.crm.models import ModelArtifact, ModelStatus
from router.errors import Conflict, InvalidInput, NotFound
from router.training import artifacts, complaints, registry
from tests.support.models import write_stand_in_rasa_model
from tests.support.triage_training import COMPLAINTS


def _same_tree(left: Path, right: Path) -> bool:
    comparison = filecmp.dircmp(left, right)
    names = comparison.common_files
    return (
        not comparison.left_only
        and not comparison.right_only
        and filecmp.cmpfiles(left, right, names, shallow=False)[0] == names
        and all(_same_tree(left / name, right / name) for name in comparison.common_dirs)
    )


def test_a_model_directory_packs_to_the_same_bytes_whatever_its_file_times_and_modes(tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "parts").mkdir(parents=True)
    (model / "manifest.json").write_text('{"format_version": 3}', encoding="utf-8")
    (model / "parts" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    first = artifacts.pack(model)

    os.utime(model / "manifest.json", (1, 1))
    (model / "parts" / "weights.bin").chmod(0o600)
    again = artifacts.pack(model)
    assert again == first
    unpacked = artifacts.unpack(again.content, tmp_path / "elsewhere" / "v1", directory=True)
    assert _same_tree(model, unpacked)
    assert not [entry for entry in unpacked.parent.iterdir() if entry.name.startswith(".")], "no draft left behind"

    (model / "manifest.json").write_text('{"format_version": 4}', encoding="utf-8")
    assert artifacts.pack(model).content_hash != first.content_hash


def test_bad_model_input_gets_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_model = tmp_path / "nlu" / "v1.tar.gz"
    not_a_model.parent.mkdir()
    not_a_model.write_bytes(b"\x00\x01 a binary file that is no tar archive")
    with pytest.raises(InvalidInput, match="is not a Rasa model"):
        artifacts.pack(not_a_model)
    with pytest.raises(InvalidInput, match="no model at"):
        artifacts.pack(tmp_path / "never-trained")

    with_link = tmp_path / "triage"
    with_link.mkdir()
    (with_link / "passwords").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput, match="not a plain file"):
        artifacts.pack(with_link)

    large = write_stand_in_rasa_model(tmp_path / "large.tar.gz", "x" * 5000)
    monkeypatch.setattr(artifacts, "MAX_ARTIFACT_BYTES", 100)
    with pytest.raises(InvalidInput, match="at most 100"):
        artifacts.pack(large)


def test_missing_or_damaged_bytes_are_refused_by_name(kefu_any_db: Kefu, tmp_path: Path) -> None:
    nlu = write_stand_in_rasa_model(tmp_path / "v1.tar.gz", "rasa model v1")
    with kefu_any_db.uow() as uow:
        registry.register(uow.session, registry.NLU, "v1", nlu, "hash", {}, ModelStatus.candidate, None)
        uow.commit()
    with kefu_any_db.reader() as reader:
        assert artifacts.content(reader.session, registry.NLU, "v1") == nlu.read_bytes()
        with pytest.raises(NotFound, match="no triage model v1"):
            artifacts.content(reader.session, registry.TRIAGE, "v1")
    with kefu_any_db.uow() as uow:
        uow.session.execute(update(ModelArtifact).values(content=b"tampered"))
        uow.commit()
    with kefu_any_db.reader() as reader, pytest.raises(Conflict, match="does not match its hash"):
        artifacts.content(reader.session, registry.NLU, "v1")


def _promoted_elsewhere(kefu: Kefu, tmp_path: Path, triage_model_dir: Path) -> None:
    """``triage_model_dir`` registered as v7 on a training machine, then promoted on this one, which lacks its files."""
    trained_there = tmp_path / "training-machine" / "triage-versions" / "v7"
    shutil.copytree(triage_model_dir, trained_there)
    metrics = {"gate": {"passed": True}}
    with kefu.uow() as uow:
        registry.register(
            uow.session, registry.TRIAGE, "v7", trained_there, "hash", metrics, ModelStatus.candidate, None
        )
        uow.commit()
    shutil.rmtree(trained_there.parent.parent)  # the rows say where it was trained; this machine has no such path
    kefu.settings.models_dir = tmp_path / "serving-machine" / "models"
    registry.promote(kefu.uow, "v7", kefu.settings.models_dir, "http://127.0.0.1:9", None)


def test_the_complaint_model_loads_from_the_store_on_a_machine_without_its_files(
    kefu_any_db: Kefu, tmp_path: Path, triage_model_dir: Path
) -> None:
    """What an action server on another machine does after a promotion there: its HotModel unpacks the store's copy."""
    _promoted_elsewhere(kefu_any_db, tmp_path, triage_model_dir)

    triage = kefu_any_db.triage_model.get()
    unpacked = registry.from_store_path(kefu_any_db.settings.models_dir, registry.TRIAGE, "v7")
    assert kefu_any_db.triage_model.path == unpacked
    assert _same_tree(triage_model_dir, unpacked)
    assert triage is not None and triage.assess("快递三天了还没到").category == "delivery"


def test_a_retrain_on_another_worker_gates_against_the_active_model_from_the_store(
    kefu_any_db: Kefu, tmp_path: Path, triage_model_dir: Path
) -> None:
    _promoted_elsewhere(kefu_any_db, tmp_path, triage_model_dir)
    heldout = complaints.Complaints(
        [text for texts in COMPLAINTS.values() for text in texts],
        [label for label, texts in COMPLAINTS.items() for _ in texts],
    )
    report = complaints.gate(kefu_any_db, triage_model_dir, heldout, 0.02)
    assert report.previous is not None, report.reasons
    assert report.previous.accuracy == report.candidate.accuracy, "the same model on both sides"
