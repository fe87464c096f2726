"""Model versions registered in the CRM with stand-in files, for tests of the registry and its callers."""

from __future__ import annotations

from router.bootstrap import Kefu
from router.crm.models import ModelStatus
from router.training import registry


def register_version(kefu: Kefu, version: str, status: ModelStatus = ModelStatus.candidate) -> None:
    """An NLU and a triage model of ``version`` on disk (stand-in bytes) and in the registry with ``status``."""
    models_dir = kefu.settings.models_dir
    nlu = registry.version_path(models_dir, registry.NLU, version)
    triage = registry.version_path(models_dir, registry.TRIAGE, version)
    nlu.parent.mkdir(parents=True, exist_ok=True)
    triage.mkdir(parents=True)
    nlu.write_bytes(b"rasa model " + version.encode())
    (triage / "model.txt").write_text(f"triage {version}", encoding="utf-8")
    with kefu.uow() as uow:
        gate = {"gate": {"reasons": ["accuracy fell"]}} if status is ModelStatus.refused else {}
        registry.register(uow.session, registry.NLU, version, nlu, "hash", gate, status, None)
        registry.register(uow.session, registry.TRIAGE, version, triage, "hash", {}, status, None)
        uow.commit()
