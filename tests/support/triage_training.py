"""Training the test triage models, in the fresh process tests.support.triage starts for it: the small model learns
the few complaints below, the default one data/ (as ``kefu triage train-default`` does)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from router.triage.sentiment import Labelled, Sentiment
from router.triage.training import train_default_model, train_model_dir, train_risk
from tests.support.model_cache import PROJECT_ROOT
from tests.support.triage import SMALL, TRAINING_INPUTS

# A small but real labelled set: enough for the triage classifier to tell these categories apart.
COMPLAINTS = {
    "delivery": [
        "快递三天了还没到",
        "物流一直不更新，包裹到底在哪",
        "配送太慢了，说好次日达",
        "my parcel has not arrived after a week",
        "the delivery is late and tracking never updates",
        "courier lost my package",
    ],
    "refund_return": [
        "退款申请一周了还没到账",
        "退货寄回去了钱还没退",
        "我要退款，商家不处理",
        "my refund has not come back to my card",
        "I returned the item but got no refund",
        "the return request was rejected for no reason",
    ],
    "product_quality": [
        "吹风机用一次就坏了",
        "收到的杯子是裂的，质量太差",
        "衣服洗一次就掉色",
        "the blender arrived broken",
        "the phone screen stopped working after two days",
        "the shoes fell apart after one wear",
    ],
}
SENTIMENT = [("太差了，气死了", 1), ("垃圾，再也不买", 1), ("很满意，谢谢", 0), ("质量不错，好评", 0)] * 3
ENGLISH_SENTIMENT = [
    ("this is a disgrace", 1),
    ("still broken, awful", 1),
    ("thanks a lot", 0),
    ("what time is it", 0),
] * 3


def _train_small(out_dir: Path) -> None:
    """The router's real triage model trained on the set above, with the shipped risk examples, into ``out_dir``."""
    texts = [text for examples in COMPLAINTS.values() for text in examples]
    labels = [label for label, examples in COMPLAINTS.items() for _ in examples]
    sentiment = Sentiment.train(
        *(Labelled([text for text, _ in rows], [negative for _, negative in rows], [1.0] * len(rows))
          for rows in (SENTIMENT, ENGLISH_SENTIMENT)),
        "test set",
    )  # fmt: skip
    train_model_dir(
        texts, labels, out_dir, sentiment, train_risk(PROJECT_ROOT / "data" / "triage", project_dir=PROJECT_ROOT)
    )


def _train(kind: str, out_dir: Path, shared_data_dir: Path | None) -> None:
    """Train the ``kind`` model into ``out_dir``, then fail if it read a project file (data opened, module imported)
    that the cache key does not hash: an edit to that file would leave the old model in use."""
    opened: list[Path] = []
    sys.addaudithook(lambda event, args: _note_opened(event, args, opened))
    if kind == SMALL:
        _train_small(out_dir)
    else:
        _train_default(out_dir, shared_data_dir)
    modules = [Path(path) for module in list(sys.modules.values()) if (path := getattr(module, "__file__", None))]
    unhashed = _unhashed_project_files([*opened, *modules], ignored=[out_dir.parent, Path(sys.prefix)])
    if unhashed:
        sys.exit(f"training the {kind} triage model read project files its cache key misses: {unhashed}")


def _train_default(out_dir: Path, shared_data_dir: Path | None) -> None:
    with tempfile.TemporaryDirectory() as no_shared_data:
        data_dir, project_dir = PROJECT_ROOT / "data", PROJECT_ROOT
        train_default_model(out_dir, data_dir, shared_data_dir or Path(no_shared_data), project_dir=project_dir)


def _note_opened(event: str, args: tuple[object, ...], opened: list[Path]) -> None:
    if event == "open" and isinstance(args[0], str | Path):
        opened.append(Path(args[0]))


def _unhashed_project_files(read: Iterable[Path], ignored: list[Path]) -> list[str]:
    """The project files of ``read`` outside TRAINING_INPUTS and ``ignored`` (a module's bytecode stands for its
    source, which the module names)."""
    covered = [(PROJECT_ROOT / name).resolve() for name in TRAINING_INPUTS] + [path.resolve() for path in ignored]
    project = PROJECT_ROOT.resolve()
    return sorted(
        str(path.relative_to(project))
        for path in {file.resolve() for file in read}
        if path.is_relative_to(project)
        and "__pycache__" not in path.parts
        and not any(path.is_relative_to(folder) for folder in covered)
    )


if __name__ == "__main__":
    _train(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
