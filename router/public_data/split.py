"""A train/held-out split in which no sentence or near-copy of it is on both sides.

Public intent sets repeat themselves: the same request with another word order, a typo fixed, "unauthorised" for
"unauthorized", or the very same sentence under two labels. A row-level random split puts such pairs on both sides
and the held-out figure then measures memory. Here texts whose character n-gram TF-IDF vectors are at least
``threshold`` cosine-similar are joined into one group (transitively, across labels and sources), and each group goes
to one side as a whole, decided by a hash of its alphabetically first text, the same on every machine and run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# numpy, SciPy and scikit-learn are imported by the functions that split: ``canonical`` is also wanted by modules
# the `kefu` command loads on every start, which must not pay for them.

NEAR_COPY_COSINE = 0.8
HELD_OUT_SHARE = 0.3
_CHUNK_ROWS = 2000
_SPACE = re.compile(r"\s+")
# British -ise spellings as American -ize: "unauthorised" and "unauthorized" are the same sentence, but one changed
# letter in a long word costs enough character n-grams to drop the pair below the threshold.
_ISE = re.compile(r"(?<=[a-z]{3})is(e|ed|es|ing|ation)\b")


def canonical(text: str) -> str:
    """The form two texts must share to be the same sentence: lower case, single spaces, no edge punctuation."""
    return _ISE.sub(r"iz\1", _SPACE.sub(" ", text.lower())).strip(" .,!?;:'\"。，！？")


def near_copy_groups(texts: Sequence[str], threshold: float = NEAR_COPY_COSINE) -> np.ndarray:
    """A group number per text; texts in one group are near-copies of each other, directly or through others."""
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not texts:
        return np.zeros(0, dtype=int)
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32)
    matrix = vectors.fit_transform([canonical(text) for text in texts])
    rows: list[np.ndarray] = []
    columns: list[np.ndarray] = []
    for start in range(0, matrix.shape[0], _CHUNK_ROWS):
        similar = (matrix[start : start + _CHUNK_ROWS] @ matrix.T).tocoo()
        keep = similar.data >= threshold
        rows.append(similar.row[keep] + start)
        columns.append(similar.col[keep])
    pairs = np.concatenate(rows), np.concatenate(columns)
    graph = coo_matrix((np.ones(len(pairs[0]), dtype=np.int8), pairs), shape=(len(texts), len(texts)))
    return connected_components(graph, directed=False)[1]


def _bucket(text: str) -> float:
    """A stable number in [0, 1) for ``text``, the same on every machine (Python's own hash is salted)."""
    digest = hashlib.sha256(canonical(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def held_out_mask(texts: Sequence[str], share: float = HELD_OUT_SHARE) -> np.ndarray:
    """True for the texts on the held-out side: about ``share`` of the groups, each group wholly on one side."""
    import numpy as np

    if not 0.0 < share < 1.0:
        raise ValueError(f"held-out share must be between 0 and 1, not {share}")
    groups = near_copy_groups(texts)
    first_text: dict[int, str] = {}
    for text, group in zip(texts, groups, strict=True):
        first_text[int(group)] = min(canonical(text), first_text.get(int(group), canonical(text)))
    held_out_groups = {group for group, text in first_text.items() if _bucket(text) < share}
    return np.array([int(group) in held_out_groups for group in groups], dtype=bool)
