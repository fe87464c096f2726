"""Short Chinese messages of real customers: what the assistant's NLU makes of a few characters of displeasure.

``python -m benchmarks.short_messages [--model PATH]``, about a minute.

Chat customers write short: "好差", "质量不行", "发货好慢". No chat log with such lines can be shipped or is at hand,
so zh_shopping's reviews of chat-message length stand in for them (no licence: evaluated on, never trained on or
shipped): the negative ones of 1–8 and 9–14 characters should be taken as a complaint, the positive ones should not.
Every review is parsed by the NLU model kefu serves (``models/nlu/active.tar.gz``), exactly as Rasa parses a turn.
The 1–8 band is not blind: data/nlu/zh_complaint_kinds.yml was written after reading negative reviews, and some
short ones were read while fixing the cues of 2026-12-05. Nobody has read the 9–14 band's misses.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks.nlu_holdout import HeldOutMessage, active_model_path, predict
from router.public_data.sources import zh_shopping_complaints, zh_shopping_praise
from router.settings import Settings

BANDS = ((1, 8), (9, 14))
COMPLAINT = "complain"


def band_figures(intents: Sequence[str]) -> dict[str, object]:
    """The share taken as a complaint (None for no messages), and the intents given most often."""
    counts = Counter(intents)
    return {
        "messages": len(intents),
        "complaint_share": round(counts[COMPLAINT] / len(intents), 3) if intents else None,
        "intents": dict(counts.most_common(6)),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Print each band's figures, then one JSON line of all of them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="model .tar.gz (default: the active one kefu serves)")
    args = parser.parse_args(argv)
    settings = Settings()
    model = args.model.resolve() if args.model else active_model_path(settings)
    shared = settings.shared_data_dir
    reviews = {"negative": zh_shopping_complaints(shared), "positive": zh_shopping_praise(shared)}
    sets = {
        f"{sentiment}_{low}_{high}": [row.text for row in rows if low <= len(row.text) <= high]
        for sentiment, rows in reviews.items()
        for low, high in BANDS
    }
    messages = [HeldOutMessage(text, name, "zh") for name, texts in sets.items() for text in texts]
    predicted = predict(model, messages)
    figures: dict[str, object] = {}
    for name in sets:
        figures[name] = band_figures([p.intent for p in predicted if p.message.intent == name])
        print(name, figures[name])
    print(json.dumps({**figures, "model": model.name}, ensure_ascii=False))


if __name__ == "__main__":
    main()
