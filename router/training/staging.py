"""Stage one training run: the project's data plus the reviewed export, minus a held-back part for the gate."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from router.errors import InvalidInput
from router.training.export import (
    REVIEWED_COMPLAINTS,
    REVIEWED_DIR,
    REVIEWED_DOMAIN,
    REVIEWED_NLU,
    REVIEWED_RULES,
    SHIPPED_COMPLAINTS,
)
from router.training.inbox import normalise
from router.training.nlu_yaml import Example, plain_text, read_nlu_file, write_nlu_file

# One example in HOLDOUT_MODULUS is held back, chosen by a hash of its text: the same sentence is held back in every
# run, so no model version was ever trained on the sentences the gate tests it with. Complaints are split the same way.
HOLDOUT_MODULUS = 5
# Labels with fewer examples keep them all for training: a model cannot learn an intent or category from nothing.
MIN_EXAMPLES_TO_HOLD_BACK = 5
CORE_DATA_FILES = ("rules.yml", "stories.yml")


@dataclass(frozen=True)
class StagedProject:
    """Paths ``rasa train`` and ``rasa test nlu`` take for one run, and the fingerprint of what went in."""

    root: Path
    config: Path
    domain_dir: Path
    data_dir: Path
    heldout: Path
    heldout_examples: list[Example]
    data_hash: str


def is_held_back(text: str) -> bool:
    """Whether the gate tests with this sentence (an intent example or a complaint) instead of training on it."""
    digest = hashlib.sha256(normalise(plain_text(text)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % HOLDOUT_MODULUS == 0


def held_back_mask(texts: Sequence[str], labels: Sequence[str]) -> list[bool]:
    """Which labelled texts are held back: a stable hash split within every label that has enough examples."""
    counts = Counter(labels)
    return [
        counts[label] >= MIN_EXAMPLES_TO_HOLD_BACK and is_held_back(text)
        for text, label in zip(texts, labels, strict=True)
    ]


def split_examples(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """(train, held back) intent examples, split by :func:`held_back_mask`."""
    mask = held_back_mask([example.text for example in examples], [example.intent for example in examples])
    train = [example for example, held in zip(examples, mask, strict=True) if not held]
    heldout = [example for example, held in zip(examples, mask, strict=True) if held]
    return train, heldout


def _nlu_sources(data_dir: Path) -> list[Path]:
    sources = sorted((data_dir / "nlu").glob("*.yml")) if (data_dir / "nlu").is_dir() else []
    reviewed = data_dir / REVIEWED_DIR / REVIEWED_NLU
    return sources + ([reviewed] if reviewed.exists() else [])


def _dedupe_reviewed_last(examples: list[Example]) -> list[Example]:
    # A sentence labelled by a reviewer overrides the same sentence in the hand-written data.
    latest: dict[str, Example] = {}
    for example in examples:
        latest.pop(normalise(example.text), None)
        latest[normalise(example.text)] = example
    return list(latest.values())


def fingerprint(paths: list[Path]) -> str:
    """Hash of the files a model is trained from: the same hash means the same model would come out."""
    digest = hashlib.sha256()
    for path in paths:
        if path.exists():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def stage_project(project_dir: Path, data_dir: Path, root: Path) -> StagedProject:
    """Copy the training inputs into ``root`` with the held-back examples moved to ``heldout.yml``."""
    if root.exists():
        shutil.rmtree(root)
    (root / "data" / "nlu").mkdir(parents=True)
    (root / "domain").mkdir()
    examples: list[Example] = []
    for index, source in enumerate(_nlu_sources(data_dir)):
        file_examples, others = read_nlu_file(source)
        examples.extend(file_examples)
        if others:
            write_nlu_file(root / "data" / "nlu" / f"{index:02d}_extras_{source.stem}.yml", [], others)
    if not examples:
        # Rasa would find this out too, but only after loading itself for many seconds.
        raise InvalidInput(f"no intent examples in {data_dir / 'nlu'}: there is nothing to train the assistant on")
    train, heldout = split_examples(_dedupe_reviewed_last(examples))
    write_nlu_file(root / "data" / "nlu" / "train.yml", train)
    write_nlu_file(root / "heldout.yml", heldout)
    for name in CORE_DATA_FILES:
        if (data_dir / name).exists():
            shutil.copy(data_dir / name, root / "data" / name)
    shutil.copy(project_dir / "domain.yml", root / "domain" / "domain.yml")
    reviewed = data_dir / REVIEWED_DIR
    if (reviewed / REVIEWED_DOMAIN).exists():
        shutil.copy(reviewed / REVIEWED_DOMAIN, root / "domain" / "reviewed.yml")
    if (reviewed / REVIEWED_RULES).exists():
        shutil.copy(reviewed / REVIEWED_RULES, root / "data" / "reviewed_rules.yml")
    shutil.copy(project_dir / "config.yml", root / "config.yml")
    inputs = sorted(path for path in root.rglob("*.yml") if path.name != "heldout.yml")
    complaints = [data_dir / SHIPPED_COMPLAINTS, data_dir / REVIEWED_COMPLAINTS]
    data_hash = fingerprint([*inputs, root / "heldout.yml", *complaints])
    return StagedProject(
        root=root,
        config=root / "config.yml",
        domain_dir=root / "domain",
        data_dir=root / "data",
        heldout=root / "heldout.yml",
        heldout_examples=heldout,
        data_hash=data_hash,
    )
