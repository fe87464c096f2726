"""The model registry: versions in ``model_versions``, promotion with hot reload, rollback to any earlier version.

Every registered version's bytes are also in the model store (router/training/artifacts.py), so a machine that did
not train a version loads it from there: Rasa servers pull the active one from the web app's model server
(``KEFU_MODEL_SERVER``), and long-running processes unpack it into ``models_dir/from-store`` (router/training/
hot_model.py). Without the model server, promotion reloads the one Rasa server at ``KEFU_RASA_URL`` (``PUT /model``).

Layout under ``settings.models_dir``: ``nlu/<version>.tar.gz`` and ``triage-versions/<version>/``, with the stable
paths ``nlu/active.tar.gz`` and ``triage`` (symlinks, what a hot model loads while the CRM has no active row) for
processes that start before they can ask the CRM; a machine moves them to the versions it has the files of.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from router.crm.models import AuditEntry, ModelStatus, ModelVersion, utcnow
from router.crm.unit_of_work import UnitOfWork
from router.errors import Conflict, InvalidInput, KefuError, NotFound
from router.training import artifacts

logger = logging.getLogger(__name__)
NLU = "nlu"
TRIAGE = "triage"
ACTIVE_LINKS = {NLU: Path(NLU) / "active.tar.gz", TRIAGE: Path(TRIAGE)}
FROM_STORE_DIR = "from-store"
RASA_RELOAD_TIMEOUT_SECONDS = 300
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class Promotion:
    """What a promotion or rollback did, for the page and the terminal."""

    version: str
    rasa_reloaded: bool
    rasa_message: str


def version_path(models_dir: Path, kind: str, version: str) -> Path:
    """Where a trained version of ``kind`` is kept."""
    return models_dir / NLU / f"{version}.tar.gz" if kind == NLU else models_dir / "triage-versions" / version


def active_link(models_dir: Path, kind: str) -> Path:
    """The stable path of the active model of ``kind`` (``rasa run --model models/nlu/active.tar.gz``)."""
    return models_dir / ACTIVE_LINKS[kind]


def from_store_path(models_dir: Path, kind: str, version: str) -> Path:
    """Where a version read from the model store is unpacked on a machine that did not train it."""
    return models_dir / FROM_STORE_DIR / kind / (f"{version}.tar.gz" if kind == NLU else version)


def _local_model(
    reader: Callable[[], UnitOfWork], kind: str, version: str, trained_path: Path, models_dir: Path
) -> Path:
    """``trained_path`` where this machine has it, else ``version`` unpacked from the model store (once per version).

    When the store cannot give it either, ``trained_path`` all the same: callers check that the model exists.
    """
    if trained_path.exists():
        return trained_path
    unpacked = from_store_path(models_dir, kind, version)
    if not unpacked.exists():
        try:
            with reader() as reading:
                data = artifacts.content(reading.session, kind, version)
        except KefuError as error:
            logger.error("the %s model %s is neither here nor usable in the store: %s", kind, version, error)
            return trained_path
        artifacts.unpack(data, unpacked, directory=kind != NLU)
    return unpacked


def active_on_this_machine(
    reader: Callable[[], UnitOfWork], kind: str, models_dir: Path
) -> tuple[Path, dict[str, Any]] | None:
    """Where this machine has the active model of ``kind`` (see :func:`_local_model`) and its metrics; None before
    the first promotion."""
    with reader() as reading:
        active = active_model(reading.session, kind)
        found = (active.version, Path(active.path), dict(active.metrics)) if active is not None else None
    if found is None:
        return None
    version, trained_path, metrics = found
    return _local_model(reader, kind, version, trained_path, models_dir), metrics


def register(
    session: Session,
    kind: str,
    version: str,
    path: Path,
    data_hash: str,
    metrics: dict[str, Any],
    status: ModelStatus,
    created_by: int | None,
    note: str = "",
    packed: artifacts.Packed | None = None,
) -> ModelVersion:
    """Record a trained model (candidate, or refused by the gate) in the registry and its bytes in the model store.

    ``packed`` is ``artifacts.pack(path)`` when the caller read the files before opening the transaction.
    """
    packed = packed or artifacts.pack(path)
    row = ModelVersion(
        kind=kind,
        version=version,
        path=str(path),
        data_hash=data_hash,
        metrics=metrics,
        status=status,
        created_by=created_by,
        note=note,
    )
    session.add(row)
    session.flush()  # the artifact's foreign key needs the version row first
    artifacts.store(session, kind, version, packed)
    session.flush()
    return row


def active_model(session: Session, kind: str) -> ModelVersion | None:
    """The model of ``kind`` in service, or None before the first promotion."""
    return session.execute(
        select(ModelVersion).where(ModelVersion.kind == kind, ModelVersion.status == ModelStatus.active)
    ).scalar_one_or_none()


def list_versions(session: Session) -> list[ModelVersion]:
    """Every registered model, newest first, for ``kefu model list`` and the registry page."""
    return list(
        session.execute(select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())).scalars()
    )


def _point_link(link: Path, target: Path) -> None:
    # Replace the symlink atomically so a process starting right now sees the old or the new model, never none.
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(f".{link.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target.resolve())
    if link.is_dir() and not link.is_symlink():
        # A model built by hand (`kefu triage train-default --out models/triage`) sits where the link goes.
        shutil.rmtree(link)
    os.replace(temporary, link)


def reload_rasa(rasa_url: str, model_path: Path, rasa_token: str = "") -> tuple[bool, str]:
    """Ask the running Rasa server to swap in ``model_path`` (``PUT /model``); (False, why) if none is running."""
    try:
        response = httpx.put(
            f"{rasa_url.rstrip('/')}/model",
            params={"token": rasa_token} if rasa_token else None,
            json={"model_file": str(model_path.resolve())},
            timeout=RASA_RELOAD_TIMEOUT_SECONDS,
        )
    except httpx.TransportError as error:
        reason = error.__class__.__name__
        return False, f"Rasa server at {rasa_url} not reachable ({reason}); it loads the active model on start"
    if response.status_code != 204:
        raise Conflict(f"Rasa refused the model ({response.status_code}): {response.text[:500]}")
    return True, f"Rasa server at {rasa_url} reloaded"


def promote(
    uow: Callable[[], UnitOfWork],
    version: str,
    models_dir: Path,
    rasa_url: str,
    actor_user_id: int | None,
    override_reason: str = "",
    action: str = "model.promote",
    *,
    rasa_token: str = "",
    rasa_pulls: bool = False,
) -> Promotion:
    """Make ``version`` the active model of every kind it has: record it, reload Rasa, then move the links.

    The registry change is committed before Rasa is asked to reload (which can take minutes), so no write
    transaction waits on the network; if Rasa refuses the model, a second transaction puts the previous versions
    back. ``rasa_token`` is Rasa's API token (``KEFU_RASA_TOKEN``), which ``PUT /model`` requires. With
    ``rasa_pulls`` (``KEFU_MODEL_SERVER``) every Rasa server pulls the newly active model from the model server
    itself, so none is sent ``PUT /model``.
    """
    _store_local_files(uow, version)
    with uow() as recording:
        change = _record_promotion(recording.session, version, actor_user_id, override_reason, action)
        recording.commit()
    reloaded, message = (False, "no Rasa model in this version")
    if change.nlu_path is not None and rasa_pulls:
        message = "every Rasa server pulls it from the model server"
    elif change.nlu_path is not None:
        try:
            reloaded, message = reload_rasa(rasa_url, change.nlu_path, rasa_token)
        except Conflict:
            with uow() as undoing:
                _undo_promotion(undoing.session, change)
                undoing.commit()
            raise
    if reloaded:
        with uow() as noting:
            noting.session.get(AuditEntry, change.audit_id).data = {**change.audit, "rasa_reloaded": True}
            noting.commit()
    for kind, path in change.paths.items():
        if path.exists():
            _point_link(active_link(models_dir, kind), path)
    return Promotion(version, reloaded, message)


def _store_local_files(uow: Callable[[], UnitOfWork], version: str) -> None:
    # A version registered before the model store existed has no bytes there: store them from this machine's files.
    with uow() as reading:
        rows = list(reading.session.execute(select(ModelVersion).where(ModelVersion.version == version)).scalars())
        stored = artifacts.stored_kinds(reading.session, version)
        local = [(row.kind, Path(row.path)) for row in rows if row.kind not in stored and Path(row.path).exists()]
    if not local:
        return
    packed = [(kind, artifacts.pack(path)) for kind, path in local]
    with uow() as storing:
        for kind, files in packed:
            artifacts.store(storing.session, kind, version, files)
        # A promotion elsewhere may have stored the same version's files first.
        with suppress(IntegrityError):
            storing.commit()


@dataclass(frozen=True)
class _RecordedPromotion:
    """What ``_record_promotion`` changed, to finish the promotion or undo it after Rasa answered."""

    paths: dict[str, Path]
    nlu_path: Path | None
    # (row id, status, promoted_at) of every row whose status changed, as it was before.
    previous: list[tuple[int, ModelStatus, datetime | None]]
    audit_id: int
    audit: dict[str, Any]


def _record_promotion(
    session: Session, version: str, actor_user_id: int | None, override_reason: str, action: str
) -> _RecordedPromotion:
    rows = list(session.execute(select(ModelVersion).where(ModelVersion.version == version)).scalars())
    if not rows:
        raise NotFound(f"no model version {version!r}")
    override_reason = override_reason.strip()
    if len(override_reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"the reason may have at most {MAX_REASON_CHARS} characters")
    refused = [row for row in rows if row.status is ModelStatus.refused]
    if refused and not override_reason:
        raise Conflict(f"the evaluation gate refused {version}: promoting it anyway needs a reason")
    stored = artifacts.stored_kinds(session, version)
    missing = [row.path for row in rows if row.kind not in stored]
    if missing:
        raise Conflict(f"model files of {version} are gone (not in the model store): {', '.join(missing)}")
    previous = []
    now = utcnow()
    for row in rows:
        current = active_model(session, row.kind)
        if current is not None and current.id != row.id:
            previous.append((current.id, current.status, current.promoted_at))
            current.status = ModelStatus.retired
            session.flush()  # the one-active-per-kind index must see the old row retired first
        previous.append((row.id, row.status, row.promoted_at))
        row.status, row.promoted_at = ModelStatus.active, now
    session.flush()
    audit: dict[str, Any] = {"version": version, "rasa_reloaded": False}
    if refused:
        audit["override_reason"] = override_reason
        # Both kinds of a version are refused together; only the gate that failed says why.
        failed_gates = [(row.kind, row.metrics.get("gate", {})) for row in refused]
        audit["gate_reasons"] = [
            f"{kind}: {reason}"
            for kind, gate in failed_gates
            if not gate.get("passed")
            for reason in gate.get("reasons", [])
        ]
    entry = AuditEntry(
        actor_user_id=actor_user_id, action="model.override" if refused else action, target=version, data=audit
    )
    session.add(entry)
    session.flush()
    by_kind = {row.kind: Path(row.path) for row in rows}
    return _RecordedPromotion(by_kind, by_kind.get(NLU), previous, entry.id, audit)


def _undo_promotion(session: Session, change: _RecordedPromotion) -> None:
    # Retire the promoted rows before reactivating the old ones, for the one-active-per-kind index.
    restored = [
        (session.get(ModelVersion, row_id), status, promoted_at) for row_id, status, promoted_at in change.previous
    ]
    for row, _status, _promoted_at in restored:
        row.status = ModelStatus.retired
    session.flush()
    for row, status, promoted_at in restored:
        row.status, row.promoted_at = status, promoted_at
        session.flush()
    session.delete(session.get(AuditEntry, change.audit_id))


def rollback(
    uow: Callable[[], UnitOfWork],
    version: str,
    models_dir: Path,
    rasa_url: str,
    actor_user_id: int | None,
    reason: str = "",
    *,
    rasa_token: str = "",
    rasa_pulls: bool = False,
) -> Promotion:
    """Go back to an earlier version in one step (audited as a rollback)."""
    with uow() as reader:
        rows = list(
            reader.session.execute(select(ModelVersion.status).where(ModelVersion.version == version)).scalars()
        )
    if rows and all(status is ModelStatus.active for status in rows):
        raise Conflict(f"{version} is already the active model")
    return promote(
        uow,
        version,
        models_dir,
        rasa_url,
        actor_user_id,
        reason,
        action="model.rollback",
        rasa_token=rasa_token,
        rasa_pulls=rasa_pulls,
    )
