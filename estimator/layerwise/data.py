"""Single-layer measurements of one hardware as node rows: one per measured run.

A row qualifies when its graph has exactly one node the profiler costs (a layer measured alone,
as in Getzner et al.). Target: energy per forward pass in joules = energy / (samples / batch).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from estimator.layerwise.features import FREE_OPS, node_features
from joulecast.errors import FailedPrecondition
from joulecast.graph import NodeRecord, profile_nodes
from joulecast.store import MeasurementStore

if TYPE_CHECKING:
    import pandas as pd


def layer_node(nodes: tuple[NodeRecord, ...]) -> NodeRecord | None:
    """The one costed node of a single-layer graph, else None."""
    costed = [n for n in nodes if n.op_type not in FREE_OPS]
    return costed[0] if len(costed) == 1 else None


def layer_frame(store_path: Path, hardware: str, phase: str = "test") -> pd.DataFrame:
    """Node rows of ``hardware``'s single-layer runs of ``phase`` (FailedPrecondition if none).

    Columns: op_type, config_id, batch_size, energy_fp_j, duration_fp_s, power_w, params,
    flops_fp, and every feature of :func:`node_features`.
    """
    records: list[dict[str, object]] = []
    nodes: dict[str, NodeRecord | None] = {}
    with MeasurementStore(store_path, read_only=True) as store:  # fit only reads
        rows = [r for r in store.rows() if r.hardware == hardware and r.phase == phase]
        for row in rows:
            if row.status != "ok" or row.graph_sha256 is None:
                continue
            if row.graph_sha256 not in nodes:
                graph = store.get_graph(row.graph_sha256)
                nodes[row.graph_sha256] = layer_node(profile_nodes(graph)) if graph else None
            node = nodes[row.graph_sha256]
            if node is None:
                continue
            passes = row.samples / row.batch_size / max(row.epochs, 1)
            records.append(
                {
                    "op_type": node.op_type,
                    "config_id": row.config_id,
                    "batch_size": row.batch_size,
                    "energy_fp_j": row.energy_j / passes,
                    "duration_fp_s": row.duration_s / passes,
                    "power_w": row.energy_j / row.duration_s,
                    "params": row.params,
                    "flops_fp": node.flops * row.batch_size,
                    **node_features(node, row.batch_size),
                }
            )
    if not records:
        raise FailedPrecondition(f"hardware {hardware!r} has no single-layer {phase} rows")
    import pandas as pd  # only when fitting: answering with a layer sum imports no pandas

    return pd.DataFrame(records)
