"""NLU retrain and per-message parse time of a pipeline config, so a feature change is weighed against its CPU cost.

``python -m benchmarks.nlu_parse_time [--config config.yml] [--messages 500]``

Trains an NLU-only model on all of data/nlu with ``train_nlu`` (as ``rasa train nlu`` does, timed), loads it and
times ``parse_message`` on the first ``--messages`` training examples in a fixed shuffle (after a few warm-up
parses). Per-turn CPU matters beside accuracy: the bot parses every customer message once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.nlu_cross_validation import PROJECT_ROOT, load_nlu_data
from benchmarks.rasa_quiet import quiet_rasa

WARM_UP = 20


async def parse_times(model: str, texts: list[str]) -> list[float]:
    """Wall milliseconds of each ``parse_message`` of the loaded model, warm-up parses excluded."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage

    processor = Agent.load(model).processor
    for text in texts[:WARM_UP]:
        await processor.parse_message(UserMessage(text=text))
    times = []
    for text in texts:
        started = time.perf_counter()
        await processor.parse_message(UserMessage(text=text))
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    """Train, time the parses, print one JSON line of the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "config.yml")
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    config = args.config.resolve()
    os.chdir(PROJECT_ROOT)  # the config's jieba dictionary path is relative to the project
    quiet_rasa()
    from rasa.model_training import train_nlu
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter

    data = load_nlu_data()
    texts = [example.get("text") for example in data.intent_examples]
    random.Random(0).shuffle(texts)
    texts = texts[: args.messages]
    with tempfile.TemporaryDirectory() as work:
        data_file = Path(work) / "nlu.yml"
        RasaYAMLWriter().dump(data_file, data)
        started = time.perf_counter()
        model = train_nlu(str(config), str(data_file), work)
        train_seconds = time.perf_counter() - started
        times = asyncio.run(parse_times(model, texts))
    ordered = sorted(times)
    print(
        json.dumps(
            {
                "config": args.config.name,
                "examples": len(data.intent_examples),
                "train_s": round(train_seconds, 1),
                "messages": len(times),
                "parse_mean_ms": round(statistics.mean(times), 2),
                "parse_p50_ms": round(ordered[len(ordered) // 2], 2),
                "parse_p95_ms": round(ordered[int(len(ordered) * 0.95)], 2),
                "load_average": [round(load, 2) for load in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
