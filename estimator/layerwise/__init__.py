"""Layer-wise energy: fit one model per operator type on single-layer measurements, predict a
graph as the sum over its nodes (Getzner et al. 2023; nn-Meter's kernel method for latency)."""

from estimator.layerwise.data import layer_frame
from estimator.layerwise.model import NAME, LayerAnswer, LayerSum

__all__ = ["NAME", "LayerAnswer", "LayerSum", "layer_frame"]
