"""ONNX graph -> GraphProfile (the one featurizer used at fit time and at serving time)."""

from estimator.graph.errors import ExternalDataRefused, GraphError, GraphTooLarge
from estimator.graph.parse import GraphLimits
from estimator.graph.profiler import profile_graph
from estimator.graph.record import GraphProfile

__all__ = [
    "ExternalDataRefused",
    "GraphError",
    "GraphLimits",
    "GraphProfile",
    "GraphTooLarge",
    "profile_graph",
]
