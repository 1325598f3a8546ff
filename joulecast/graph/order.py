"""The order of a graph's nodes: topological, or refused when the graph has a cycle.

ONNX requires a graph's nodes in topological order, and the profiler relies on it: shapes, FLOPs
and the family's dependency chain are computed in one forward pass. A graph with a cycle (a node
fed by its own output, directly or through others) computes nothing that can be priced: it used
to be answered with 0 FLOPs, and is now refused. A graph whose nodes are merely listed out of
order is sorted (stably: independent nodes keep their order) with a warning.

The check costs one set lookup per node input on the common, sorted path; the full dependency
analysis runs only when some input is produced later in the list.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Protocol

from joulecast.graph.errors import GraphError

MAX_NAMED = 4
"""Nodes of a cycle named in the refusal."""


class _Node(Protocol):
    op: str
    inputs: Sequence[str]
    outputs: Sequence[str]

    @property
    def label(self) -> str: ...


def needs_sorting(nodes: Sequence[_Node]) -> bool:
    """True when some node reads a value that a node listed at or after it produces."""
    produced: set[str] = set()
    early: set[str] = set()
    for node in nodes:
        for name in node.inputs:
            if name and name not in produced:
                early.add(name)
        produced.update(node.outputs)
    return not produced.isdisjoint(early)


def topological(nodes: Sequence[_Node]) -> tuple[list[int], str | None]:
    """(node indices in a topological order, a warning when that is not the given order);
    GraphError naming some nodes of a cycle when there is none."""
    if not needs_sorting(nodes):
        return list(range(len(nodes))), None
    producer: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.outputs:
            if name:
                producer.setdefault(name, []).append(index)
    consumers: list[list[int]] = [[] for _ in nodes]
    waiting = [0] * len(nodes)
    for index, node in enumerate(nodes):
        for source in {p for name in node.inputs if name for p in producer.get(name, ())}:
            consumers[source].append(index)
            waiting[index] += 1
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for after in consumers[index]:
            waiting[after] -= 1
            if waiting[after] == 0:
                heapq.heappush(ready, after)
    if len(order) < len(nodes):
        stuck = [i for i, n in enumerate(waiting) if n > 0]
        named = ", ".join(nodes[i].label[:60] for i in stuck[:MAX_NAMED])
        more = f" and {len(stuck) - MAX_NAMED} more" if len(stuck) > MAX_NAMED else ""
        raise GraphError(
            f"the graph has a cycle: {len(stuck)} node(s) wait on their own outputs ({named}"
            f"{more}); an ONNX graph must be acyclic"
        )
    return order, "the graph's nodes were not in topological order; profiled in sorted order"
