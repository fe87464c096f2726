"""The assistant's training data against the shared public sets: the imported English file is current and holds no
held-out sentence, and our own Chinese examples written after reading zh_shopping copy none of its reviews."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from router.public_data.sides import held_out_rows
from router.public_data.sources import zh_shopping_complaints
from router.public_data.split import NEAR_COPY_COSINE, canonical
from router.settings import PROJECT_ROOT, Settings
from router.training.nlu_yaml import plain_text, read_nlu_file
from router.training.public_nlu import GENERATED_FILE, import_public

DATA = PROJECT_ROOT / "data"
SHARED = Settings().shared_data_dir
# Written by us after reading zh_shopping's negative reviews (data/nlu/README.md).
ZH_FILES_FROM_READING = ("zh_complaint_kinds.yml",)

pytestmark = pytest.mark.skipif(
    not (SHARED / "zh_shopping" / "dev.csv").is_file(), reason=f"the shared public data sets are not at {SHARED}"
)


def imported_texts() -> list[str]:
    return [plain_text(example.text) for example in read_nlu_file(DATA / "nlu" / GENERATED_FILE)[0]]


def test_the_shipped_file_is_what_the_import_writes_now(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for part in ("public", "nlu", "triage"):
        shutil.copytree(DATA / part, data_dir / part)
    path, counts = import_public(PROJECT_ROOT, data_dir)
    assert path.read_text(encoding="utf-8") == (DATA / "nlu" / GENERATED_FILE).read_text(encoding="utf-8")
    assert set(counts) == {"complain", "check_status", "ask_faq", "out_of_scope", "chitchat"}


def test_no_imported_sentence_is_on_the_held_out_side() -> None:
    held_out = {canonical(row.text) for row in held_out_rows(SHARED, DATA / "public")}
    assert held_out and not [text for text in imported_texts() if canonical(text) in held_out]


@pytest.mark.slow  # vectorises zh_shopping's 25k reviews; make test runs it, as every change to data/ needs
def test_our_chinese_examples_copy_no_review() -> None:
    ours = [plain_text(e.text) for name in ZH_FILES_FROM_READING for e in read_nlu_file(DATA / "nlu" / name)[0]]
    reviews = [canonical(row.text) for row in zh_shopping_complaints(SHARED)]
    # The split's own measure of a near-copy, taken between our lines and the reviews only.
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    review_vectors = vectors.fit_transform(ours + reviews)[len(ours) :]  # one pass over the 25k reviews, not two
    closest = (vectors.transform([canonical(text) for text in ours]) @ review_vectors.T).max(axis=1)
    copied = [text for text, cosine in zip(ours, closest.toarray().ravel(), strict=True) if cosine >= NEAR_COPY_COSINE]
    assert not copied, copied
