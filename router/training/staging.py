"""Stage one training run: the project's data plus the reviewed export, minus a held-back part for the gate."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from router.training.export import REVIEWED_COMPLAINTS, REVIEWED_DIR, REVIEWED_DOMAIN, REVIEWED_NLU, REVIEWED_RULES
from router.training.inbox import normalise
from router.training.nlu_yaml import Example, plain_text, read_nlu_file, write_nlu_file

# One example in HOLDOUT_MODULUS is held back, chosen by a hash of its text: the same sentence is held back in every
# run, so no model version was ever trained on the sentences the gate tests it with.
HOLDOUT_MODULUS = 5
# Intents with fewer examples keep them all for training: a model cannot learn an intent from nothing.
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


def is_held_back(example: Example) -> bool:
    """Whether the gate tests with this sentence instead of training on it."""
    digest = hashlib.sha256(normalise(plain_text(example.text)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % HOLDOUT_MODULUS == 0


def split_examples(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """(train, held back): a stable hash split within every intent that has enough examples."""
    counts = Counter(example.intent for example in examples)
    train, heldout = [], []
    for example in examples:
        enough = counts[example.intent] >= MIN_EXAMPLES_TO_HOLD_BACK
        (heldout if enough and is_held_back(example) else train).append(example)
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
    data_hash = fingerprint([*inputs, root / "heldout.yml", data_dir / REVIEWED_COMPLAINTS])
    return StagedProject(
        root=root,
        config=root / "config.yml",
        domain_dir=root / "domain",
        data_dir=root / "data",
        heldout=root / "heldout.yml",
        heldout_examples=heldout,
        data_hash=data_hash,
    )
