"""ONNX graph -> GraphProfile (the one featurizer used at fit time and at serving time)."""

from joulecast.graph.errors import ExternalDataRefused, GraphError, GraphTooLarge
from joulecast.graph.parse import GraphLimits
from joulecast.graph.profiler import profile_graph
from joulecast.graph.record import GraphProfile

__all__ = [
    "ExternalDataRefused",
    "GraphError",
    "GraphLimits",
    "GraphProfile",
    "GraphTooLarge",
    "profile_graph",
]
