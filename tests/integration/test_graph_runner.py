"""kefu's sequential graph runner gives Rasa exactly what its dask runner gives, turn by turn, on the real model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import rasa.core.processor
from rasa.core.agent import Agent
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

from bot.graph_runner import SequentialGraphRunner
from tests.support.rasa_stack import trained_model

CONVERSATION = [
    "你好",
    "hello",
    "我的订单到哪了",
    "where is my parcel",
    "怎么退货",
    "how do refunds work",
    "我要投诉，订单12345一直没发货",
    "the kettle I bought leaks, I want a refund now",
    "转人工",
    "5分",
    "asdf qwer",
    "",
    "谢谢",
    "bye",
]


def agent_with(runner_class: type, monkeypatch: pytest.MonkeyPatch) -> Agent:
    """An agent whose processor loaded the model with ``runner_class``."""
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", runner_class)
    return Agent.load(str(trained_model()), tracker_store=InMemoryTrackerStore(domain=None))


def comparable(event: dict[str, Any]) -> dict[str, Any]:
    """The event without what differs between any two runs: times and random message ids."""
    event = {key: value for key, value in event.items() if key not in ("timestamp", "metadata", "message_id")}
    if "parse_data" in event:
        event["parse_data"] = {key: value for key, value in event["parse_data"].items() if key != "message_id"}
    return event


async def chat(agent: Agent) -> list[dict[str, Any]]:
    """Every event of one conversation (custom actions fail alike: no action server here)."""
    for text in CONVERSATION:
        await agent.handle_text(text, sender_id="same-for-both")
    tracker = await agent.tracker_store.retrieve("same-for-both")
    return [comparable(event.as_dict()) for event in tracker.events]


@pytest.fixture(scope="module")
def model() -> Path:
    return trained_model()


@pytest.mark.rasa  # loads (and if need be trains) the assistant's Rasa model
def test_a_conversation_goes_exactly_as_under_dask(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    under_dask = agent_with(DaskGraphRunner, monkeypatch)
    sequential = agent_with(SequentialGraphRunner, monkeypatch)
    assert isinstance(under_dask.processor.graph_runner, DaskGraphRunner)
    assert isinstance(sequential.processor.graph_runner, SequentialGraphRunner)

    expected, actual = asyncio.run(chat(under_dask)), asyncio.run(chat(sequential))

    assert len(actual) > 3 * len(CONVERSATION)  # user, action and bot events for every turn
    assert actual == expected


@pytest.mark.rasa
def test_an_input_named_like_a_node_is_refused(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = agent_with(SequentialGraphRunner, monkeypatch).processor.graph_runner
    node = next(iter(runner._graph_schema.nodes))

    with pytest.raises(GraphRunError, match="clashes with a node name"):
        runner.run(inputs={"__message__": node})
