"""Model versions registered in the CRM: stand-in files for tests of the registry and its callers, or a real triage
model made the active one."""

from __future__ import annotations

import io
import tarfile
from functools import lru_cache
from pathlib import Path

from router.bootstrap import Kefu
from router.crm.models import ModelStatus
from router.training import artifacts, registry

STAND_IN_MEMBER = "model.txt"


def write_stand_in_rasa_model(path: Path, text: str) -> Path:
    """A gzipped tar holding ``text``: shaped like a Rasa model, which the model store insists on, but tiny."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    member = tarfile.TarInfo(STAND_IN_MEMBER)
    member.size = len(data)
    with tarfile.open(path, "w:gz") as archive:
        archive.addfile(member, io.BytesIO(data))
    return path


def stand_in_text(path: Path) -> str:
    """The text a stand-in Rasa model at ``path`` holds."""
    with tarfile.open(path, "r:gz") as archive:
        return archive.extractfile(STAND_IN_MEMBER).read().decode()


def register_version(kefu: Kefu, version: str, status: ModelStatus = ModelStatus.candidate) -> None:
    """An NLU and a triage model of ``version`` on disk (stand-ins) and in the registry with ``status``."""
    models_dir = kefu.settings.models_dir
    nlu = write_stand_in_rasa_model(registry.version_path(models_dir, registry.NLU, version), f"rasa model {version}")
    triage = registry.version_path(models_dir, registry.TRIAGE, version)
    triage.mkdir(parents=True)
    (triage / "model.txt").write_text(f"triage {version}", encoding="utf-8")
    with kefu.uow() as uow:
        gate = {"gate": {"reasons": ["accuracy fell"]}} if status is ModelStatus.refused else {}
        registry.register(uow.session, registry.NLU, version, nlu, "hash", gate, status, None)
        registry.register(uow.session, registry.TRIAGE, version, triage, "hash", {}, status, None)
        uow.commit()


@lru_cache(maxsize=4)
def _packed(model_dir: Path) -> artifacts.Packed:
    # Packed once per test module's model, not once per test that activates it.
    return artifacts.pack(model_dir)


def activate_triage(kefu: Kefu, model_dir: Path) -> None:
    """Make ``model_dir`` the registry's active triage model, as a promotion does."""
    with kefu.uow() as uow:
        registry.register(
            uow.session, "triage", "test-1", model_dir, "test", {}, ModelStatus.active, None, packed=_packed(model_dir)
        )
        uow.commit()
