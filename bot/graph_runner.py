"""Rasa's prediction graphs run node after node in plain Python instead of through dask's scheduler.

Rasa runs a graph three or more times per customer turn (the NLU pipeline once, the policies once per predicted
action). Its ``DaskGraphRunner`` works out the needed part of the graph, builds a dask task graph and hands it to
dask's synchronous scheduler every time; for graphs of a dozen nodes that took about as much CPU as the nodes'
own work in the NLU pipeline. This runner works out each target set's order once and then calls the same
``GraphNode`` objects in that order with the same inputs, so every component sees exactly what it saw under dask.
"""

from __future__ import annotations

from typing import Any

import rasa.core.processor
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import ExecutionContext, GraphNodeHook, GraphSchema
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.storage import ModelStorage

Plan = list[tuple[str, tuple[str, ...]]]


class SequentialGraphRunner(DaskGraphRunner):
    """A ``DaskGraphRunner`` whose ``run`` calls the graph's nodes in a precomputed order, one after another."""

    def __init__(
        self,
        graph_schema: GraphSchema,
        model_storage: ModelStorage,
        execution_context: ExecutionContext,
        hooks: list[GraphNodeHook] | None = None,
    ) -> None:
        """Upstream's runner (it instantiates the nodes) and an empty plan per target set."""
        super().__init__(graph_schema, model_storage, execution_context, hooks)
        self._plans: dict[tuple[str, ...], Plan] = {}

    def run(self, inputs: dict[str, Any] | None = None, targets: list[str] | None = None) -> dict[str, Any]:
        """The targets' results, as ``DaskGraphRunner.run`` returns them."""
        run_targets = tuple(targets or self._graph_schema.target_names)
        results = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in self._graph_schema.nodes:
                raise GraphRunError(f"Input value '{value}' clashes with a node name.")
            results[name] = (name, value)
        try:
            plan = self._plans.get(run_targets) or self._plans.setdefault(run_targets, self._plan(run_targets))
            for node_name, needs in plan:
                results[node_name] = self._instantiated_nodes[node_name](*(results[need] for need in needs))
        except RuntimeError as error:
            raise GraphRunError("Error running runner.") from error
        except KeyError as error:
            raise GraphRunError(f"No node or input named {error} for the graph's targets {run_targets}.") from error
        return dict(results[target] for target in run_targets)

    def _plan(self, targets: tuple[str, ...]) -> Plan:
        """The nodes the targets need, each after everything it needs, with the names of its inputs."""
        schema = self._graph_schema.minimal_graph_schema(list(targets))
        order: Plan = []
        placed: set[str] = set()

        def place(node_name: str) -> None:
            if node_name in placed or node_name not in schema.nodes:
                return
            placed.add(node_name)
            needs = tuple(schema.nodes[node_name].needs.values())
            for need in needs:
                place(need)
            order.append((node_name, needs))

        for target in targets:
            place(target)
        return order


def install() -> None:
    """Make Rasa's message processor load its models with this runner (training keeps dask)."""
    rasa.core.processor.DaskGraphRunner = SequentialGraphRunner
