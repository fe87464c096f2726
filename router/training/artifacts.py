"""The model store: the bytes of every registered model in the CRM database, which every machine reads.

A Rasa model is stored as ``rasa train`` wrote it (a tar.gz); a triage model, a directory, is packed into a tar.gz
deterministically (sorted names, no timestamps, owners or modes of this machine), so the same files always give the
same bytes and the same content hash. That hash is the model server's ETag, and bytes read back must match it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import ModelArtifact, ModelStatus, ModelVersion
from router.errors import Conflict, InvalidInput, NotFound

# Each pull holds the whole model in the web app's memory, and PostgreSQL's bytea stops at 1 GB.
MAX_ARTIFACT_BYTES = 256 * 1024 * 1024
# The fastest level: models are mostly numbers, which level 6 packs only ~8 % smaller in three times as long.
PACK_COMPRESSION = 1


@dataclass(frozen=True)
class Packed:
    """A model's bytes, ready to store: read and checked before any transaction opens."""

    content: bytes
    content_hash: str


@dataclass(frozen=True)
class Stamp:
    """Which version of a kind is active and the hash of its stored bytes, without the bytes."""

    version: str
    content_hash: str


def _checked_size(size: int, path: Path) -> None:
    if size > MAX_ARTIFACT_BYTES:
        raise InvalidInput(f"{path} holds {size} bytes; the model store takes at most {MAX_ARTIFACT_BYTES}")


def _packed_directory(directory: Path) -> bytes:
    entries = sorted(directory.rglob("*"), key=lambda entry: entry.relative_to(directory).as_posix())
    for entry in entries:
        if entry.is_symlink() or not (entry.is_file() or entry.is_dir()):
            raise InvalidInput(f"{entry} is not a plain file: a model directory holds only files and directories")
    _checked_size(sum(entry.stat().st_size for entry in entries if entry.is_file()), directory)
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=PACK_COMPRESSION, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for entry in entries:
            info = archive.gettarinfo(str(entry), arcname=entry.relative_to(directory).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if entry.is_dir() else 0o644
            if entry.is_dir():
                archive.addfile(info)
            else:
                with entry.open("rb") as file:
                    archive.addfile(info, file)
    return buffer.getvalue()


def _model_file(path: Path) -> bytes:
    _checked_size(path.stat().st_size, path)
    content = path.read_bytes()
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
            archive.next()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise InvalidInput(f"{path} is not a Rasa model (a gzipped tar archive): {error}") from error
    return content


def pack(path: Path) -> Packed:
    """The bytes of the model at ``path``: a Rasa model file as it is, a model directory packed as a tar.gz."""
    if path.is_dir():
        content = _packed_directory(path)
    elif path.is_file():
        content = _model_file(path)
    else:
        raise InvalidInput(f"no model at {path}")
    _checked_size(len(content), path)
    return Packed(content, hashlib.sha256(content).hexdigest())


def store(session: Session, kind: str, version: str, packed: Packed) -> None:
    """Keep ``packed`` as the bytes of ``version`` of ``kind`` (registered in the same transaction)."""
    session.add(
        ModelArtifact(
            kind=kind,
            version=version,
            content_hash=packed.content_hash,
            size=len(packed.content),
            content=packed.content,
        )
    )


def stored_kinds(session: Session, version: str) -> set[str]:
    """The kinds of ``version`` whose bytes are in the store."""
    return set(session.execute(select(ModelArtifact.kind).where(ModelArtifact.version == version)).scalars())


def active_stamp(session: Session, kind: str) -> Stamp | None:
    """The active version of ``kind`` and its content hash; None when none is active or its bytes are not stored."""
    row = session.execute(
        select(ModelArtifact.version, ModelArtifact.content_hash)
        .join(ModelVersion, (ModelVersion.kind == ModelArtifact.kind) & (ModelVersion.version == ModelArtifact.version))
        .where(ModelVersion.kind == kind, ModelVersion.status == ModelStatus.active)
    ).one_or_none()
    return Stamp(row.version, row.content_hash) if row is not None else None


def content(session: Session, kind: str, version: str) -> bytes:
    """The stored bytes of ``version`` of ``kind``, checked against their hash."""
    row = session.execute(
        select(ModelArtifact.content, ModelArtifact.content_hash).where(
            ModelArtifact.kind == kind, ModelArtifact.version == version
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"the model store has no {kind} model {version}; register it again from its files")
    if hashlib.sha256(row.content).hexdigest() != row.content_hash:
        raise Conflict(f"the stored {kind} model {version} does not match its hash; register it again")
    return bytes(row.content)


def unpack(data: bytes, destination: Path, directory: bool) -> Path:
    """Write ``data`` to ``destination`` (a file, or with ``directory`` the unpacked directory), atomically.

    Processes unpacking the same version at once each build a private draft and rename it into place; a process
    that finds the version already published keeps that one.
    """
    if destination.exists():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    draft = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        if directory:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                archive.extractall(draft, filter="data")
            published = draft
        else:
            published = draft / destination.name
            published.write_bytes(data)
        os.rename(published, destination)
    except OSError:
        if not destination.exists():
            raise
    finally:
        shutil.rmtree(draft, ignore_errors=True)
    return destination
