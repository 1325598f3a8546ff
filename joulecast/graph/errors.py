"""Typed refusals of the graph profiler: each names what is wrong with the uploaded graph."""

from __future__ import annotations

from joulecast.errors import InvalidArgument, ResourceLimit


class GraphError(InvalidArgument):
    """The bytes are not a usable ONNX graph (malformed, empty, inconsistent)."""


class ExternalDataRefused(GraphError):
    """A tensor points at external data; the profiler never reads a path from a graph."""


class GraphTooLarge(ResourceLimit):
    """The graph exceeds a limit of :class:`~joulecast.graph.parse.GraphLimits`
    (bytes, node count, subgraph nesting, a declared dimension or a tensor's size)."""
