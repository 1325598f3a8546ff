"""Which ONNX operator set a graph uses, refused when it cannot exist.

The profiler's shape and FLOP rules follow the ONNX operator definitions, which change between
opsets (Slice, Pad, Resize...). A graph importing an opset that no ONNX release defines (0,
99, 10000) gives no ground for any rule and is refused. One a little newer than the installed
``onnx`` knows (a model exported by a newer toolchain) is read by the newest definitions this
``onnx`` has, with a warning. Opsets of other domains (``ai.onnx.ml``, custom ones) are not
checked: their versions are the domain's own.
"""

from __future__ import annotations

import onnx

from joulecast.graph.errors import GraphError

DEFAULT_DOMAINS = ("", "ai.onnx")
NEWER_MARGIN = 3
"""Opsets above the newest the installed onnx knows that may exist already (about two ONNX
releases a year, one opset each); anything beyond is refused as nonexistent."""
DEFAULT_OPSET = 17
"""Assumed when a graph imports only other domains' opsets."""


def known_opset() -> int:
    """The newest default-domain opset the installed ``onnx`` defines."""
    return int(onnx.defs.onnx_opset_version())


def graph_opset(model: onnx.ModelProto) -> tuple[int, tuple[str, ...]]:
    """(the default-domain opset, warnings) of ``model``; GraphError for an opset no ONNX
    release can define."""
    known = known_opset()
    found = [int(o.version) for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if not found:
        return DEFAULT_OPSET, ()
    if len(set(found)) > 1:
        raise GraphError(f"the graph imports the ONNX opset twice, as {sorted(set(found))}")
    version = found[0]
    if version < 1:
        raise GraphError(f"ONNX opset {version} does not exist (opsets start at 1)")
    if version > known + NEWER_MARGIN:
        raise GraphError(
            f"ONNX opset {version} does not exist (the newest this onnx {onnx.__version__} "
            f"knows is {known})"
        )
    if version > known:
        return known, (
            f"ONNX opset {version} is newer than this onnx {onnx.__version__} knows ({known}); "
            f"its ops are costed by their opset-{known} definitions",
        )
    return version, ()
