"""The model registry: versions in ``model_versions``, promotion with hot reload, rollback to any earlier version.

Layout under ``settings.models_dir``: ``nlu/<version>.tar.gz`` and ``triage-versions/<version>/``, with the stable
paths ``nlu/active.tar.gz`` and ``triage`` (symlinks, ``triage`` being where ``Triage.load()`` looks by default) for
processes that start before they can ask the CRM.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import AuditEntry, ModelStatus, ModelVersion, utcnow
from router.errors import Conflict, InvalidInput, NotFound

NLU = "nlu"
TRIAGE = "triage"
ACTIVE_LINKS = {NLU: Path(NLU) / "active.tar.gz", TRIAGE: Path(TRIAGE)}
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
) -> ModelVersion:
    """Record a trained model (candidate, or refused by the gate) in the registry."""
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
    session: Session,
    version: str,
    models_dir: Path,
    rasa_url: str,
    actor_user_id: int | None,
    override_reason: str = "",
    action: str = "model.promote",
    *,
    rasa_token: str = "",
) -> Promotion:
    """Make ``version`` the active model of every kind it has: reload Rasa, then record it and move the links.

    ``rasa_token`` is Rasa's API token (``KEFU_RASA_TOKEN``), which ``PUT /model`` requires.
    """
    rows = list(session.execute(select(ModelVersion).where(ModelVersion.version == version)).scalars())
    if not rows:
        raise NotFound(f"no model version {version!r}")
    override_reason = override_reason.strip()
    if len(override_reason) > MAX_REASON_CHARS:
        raise InvalidInput(f"the reason may have at most {MAX_REASON_CHARS} characters")
    refused = [row for row in rows if row.status is ModelStatus.refused]
    if refused and not override_reason:
        raise Conflict(f"the evaluation gate refused {version}: promoting it anyway needs a reason")
    missing = [row.path for row in rows if not Path(row.path).exists()]
    if missing:
        raise Conflict(f"model files of {version} are gone: {', '.join(missing)}")
    by_kind = {row.kind: row for row in rows}
    reloaded, message = (False, "no Rasa model in this version")
    if NLU in by_kind:
        reloaded, message = reload_rasa(rasa_url, Path(by_kind[NLU].path), rasa_token)
    now = utcnow()
    for row in rows:
        current = active_model(session, row.kind)
        if current is not None and current.id != row.id:
            current.status = ModelStatus.retired
            session.flush()  # the one-active-per-kind index must see the old row retired first
        row.status, row.promoted_at = ModelStatus.active, now
    session.flush()
    audit: dict[str, Any] = {"version": version, "rasa_reloaded": reloaded}
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
    session.add(
        AuditEntry(
            actor_user_id=actor_user_id,
            action="model.override" if refused else action,
            target=version,
            data=audit,
        )
    )
    for row in rows:
        _point_link(active_link(models_dir, row.kind), Path(row.path))
    return Promotion(version, reloaded, message)


def rollback(
    session: Session,
    version: str,
    models_dir: Path,
    rasa_url: str,
    actor_user_id: int | None,
    reason: str = "",
    *,
    rasa_token: str = "",
) -> Promotion:
    """Go back to an earlier version in one step (audited as a rollback)."""
    rows = list(session.execute(select(ModelVersion.status).where(ModelVersion.version == version)).scalars())
    if rows and all(status is ModelStatus.active for status in rows):
        raise Conflict(f"{version} is already the active model")
    return promote(
        session, version, models_dir, rasa_url, actor_user_id, reason, action="model.rollback", rasa_token=rasa_token
    )
