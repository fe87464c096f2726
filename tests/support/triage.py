"""A small but real triage model trained for tests, and made the active one as a promotion does."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from router.bootstrap import Kefu
from router.crm.models import ModelStatus
from router.training import artifacts, registry
from router.triage.sentiment import Labelled, Sentiment
from router.triage.training import train_model_dir, train_risk

# The shipped risk examples: the danger floors need a risk model beside the small classifier below.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRIAGE_DATA = PROJECT_ROOT / "data" / "triage"

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


def train_small_triage(out_dir: Path) -> Path:
    """Train the router's real triage model on the set above into ``out_dir``."""
    texts = [text for examples in COMPLAINTS.values() for text in examples]
    labels = [label for label, examples in COMPLAINTS.items() for _ in examples]
    sentiment = Sentiment.train(
        *(Labelled([text for text, _ in rows], [negative for _, negative in rows], [1.0] * len(rows))
          for rows in (SENTIMENT, ENGLISH_SENTIMENT)),
        "test set",
    )  # fmt: skip
    train_model_dir(texts, labels, out_dir, sentiment, train_risk(TRIAGE_DATA, project_dir=PROJECT_ROOT))
    return out_dir


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
