"""Weightless ONNX graphs: every tensor keeps its name, element type and dims, but no data.

The collector stores one weightless graph per measured model (a few KB instead of up to GBs)
and clients may upload one instead of the full model. The graph profiler needs only shapes, so
it gives identical results on a full graph and on its weightless copy.

A weightless graph is marked with the metadata property ``joulecast.weightless = "1"``.
Tensors of at most :data:`KEEP_ELEMENTS` elements keep their data: they are shape and index
constants (``Reshape`` targets, ``Slice`` bounds) that shape inference needs, and they weigh
nothing.

Files and serialised bytes are stripped by scanning the protobuf wire format
(:mod:`joulecast.onnx_wire`): the weights are never parsed, nor even read from disk. The
``ModelProto`` functions below give the same bytes for models already in memory.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from joulecast.errors import InvalidArgument
from joulecast.onnx_wire import (
    FLOAT_TYPES,
    KEEP_ELEMENTS,
    WEIGHTLESS_KEY,
    strip_file,
    strip_serialized,
)

if TYPE_CHECKING:
    import onnx
    import torch

logger = logging.getLogger(__name__)

_EXTERNAL = 1  # onnx.TensorProto.EXTERNAL
_DEFAULT = 0  # onnx.TensorProto.DEFAULT
_DATA_FIELDS = (
    "raw_data",
    "float_data",
    "int32_data",
    "string_data",
    "int64_data",
    "double_data",
    "uint64_data",
)


def _numel(dims: Iterator[int] | list[int]) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


def strip_tensor(
    tensor: onnx.TensorProto, keep_elements: int = KEEP_ELEMENTS, *, parameter: bool = False
) -> bool:
    """Drop ``tensor``'s data in place (external references included); keep name, type, dims.

    Small tensors keep their data, except floating-point ``parameter`` tensors (initializers),
    which are always dropped: an export with ``export_params=False`` never has their data, and
    both routes must give the same graph. A tensor stored externally always loses its
    reference, whatever its size, so that the result never points at a file.
    Returns True when data was dropped.
    """
    external = tensor.data_location == _EXTERNAL or len(tensor.external_data) > 0
    always = parameter and tensor.data_type in FLOAT_TYPES
    if not external and not always and _numel(tensor.dims) <= keep_elements:
        return False
    for name in _DATA_FIELDS:
        tensor.ClearField(name)
    tensor.ClearField("external_data")
    tensor.data_location = _DEFAULT
    return True


def _strip_sparse(sparse: onnx.SparseTensorProto, keep_elements: int) -> None:
    strip_tensor(sparse.values, keep_elements)
    strip_tensor(sparse.indices, keep_elements)


def _strip_attribute(attr: onnx.AttributeProto, keep_elements: int) -> None:
    if attr.HasField("t"):
        strip_tensor(attr.t, keep_elements)
    for t in attr.tensors:
        strip_tensor(t, keep_elements)
    if attr.HasField("sparse_tensor"):
        _strip_sparse(attr.sparse_tensor, keep_elements)
    for s in attr.sparse_tensors:
        _strip_sparse(s, keep_elements)
    if attr.HasField("g"):
        strip_graph(attr.g, keep_elements)
    for g in attr.graphs:
        strip_graph(g, keep_elements)


def strip_graph(graph: onnx.GraphProto, keep_elements: int = KEEP_ELEMENTS) -> None:
    """Strip the data of every initializer and node-attribute tensor of ``graph``, in place,
    subgraphs included."""
    for t in graph.initializer:
        strip_tensor(t, keep_elements, parameter=True)
    for s in graph.sparse_initializer:
        _strip_sparse(s, keep_elements)
    for node in graph.node:
        for attr in node.attribute:
            _strip_attribute(attr, keep_elements)


def strip_model(model: onnx.ModelProto, keep_elements: int = KEEP_ELEMENTS) -> onnx.ModelProto:
    """Strip ``model`` in place (graph, training graphs and local functions) and mark it
    weightless."""
    strip_graph(model.graph, keep_elements)
    for info in model.training_info:
        if info.HasField("initialization"):
            strip_graph(info.initialization, keep_elements)
        if info.HasField("algorithm"):
            strip_graph(info.algorithm, keep_elements)
    for function in model.functions:
        for node in function.node:
            for attr in node.attribute:
                _strip_attribute(attr, keep_elements)
    for prop in model.metadata_props:
        if prop.key == WEIGHTLESS_KEY:
            prop.value = "1"
            break
    else:
        model.metadata_props.add(key=WEIGHTLESS_KEY, value="1")
    return model


def is_weightless(model: onnx.ModelProto) -> bool:
    return any(p.key == WEIGHTLESS_KEY and p.value == "1" for p in model.metadata_props)


def strip_weights(model: bytes | bytearray | memoryview | onnx.ModelProto) -> bytes:
    """The weightless serialisation of ``model`` (ONNX bytes or a proto, left unchanged).

    Bytes are stripped on the wire (:func:`joulecast.onnx_wire.strip_serialized`): the
    weights are never parsed."""
    if isinstance(model, bytes | bytearray | memoryview):
        return strip_serialized(model)
    import onnx  # only for a proto, whose caller has onnx: bytes are stripped without it

    if not isinstance(model, onnx.ModelProto):
        raise InvalidArgument(f"expected ONNX bytes or a ModelProto, got {type(model).__name__}")
    proto = onnx.ModelProto()
    proto.CopyFrom(model)
    return strip_model(proto).SerializeToString()


def strip_weights_file(path: str | os.PathLike[str]) -> bytes:
    """The weightless serialisation of the ONNX file at ``path``.

    The file is memory-mapped and scanned (:func:`joulecast.onnx_wire.strip_file`): the pages
    holding weights are never read, and external data files are never opened (every external
    reference is dropped). Memory and time follow the size of the graph, not of the weights.
    """
    return strip_file(path)


def params_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Turn graph inputs that are parameters (all but the first, the model's input ``x``) into
    data-less initializers, in place: what an export with ``export_params=False`` gives back
    becomes what stripping a full export gives."""
    graph = model.graph
    real_inputs = [vi for vi in graph.input if vi.name == "x"]
    if not real_inputs:
        raise InvalidArgument("exported graph has no input named 'x'")
    params = [vi for vi in graph.input if vi.name != "x"]
    for vi in params:
        ttype = vi.type.tensor_type
        dims = []
        for d in ttype.shape.dim:
            if not d.HasField("dim_value"):
                raise InvalidArgument(f"parameter {vi.name!r} has a symbolic dimension")
            dims.append(d.dim_value)
        graph.initializer.add(name=vi.name, data_type=ttype.elem_type, dims=dims)
    del graph.input[:]
    graph.input.extend(real_inputs)
    return model


_EXPORT_LOCK = threading.Lock()


class _LightShapeInference:
    """Stand-in for ``torch._C`` inside the TorchScript exporter's module.

    Two passes change. The ONNX shape-inference pass copies every parameter it is given into
    a per-node ONNX proto (seconds per GB): parameters above :data:`KEEP_ELEMENTS` elements
    are hidden from it; it then takes their type and shape from the traced graph, so the
    exported graph is the same (checked by the tests), and a 2.2 GB MLP exports in ~0.2 s
    instead of ~18 s. The initializer de-duplication pass is skipped (see its docstring).
    """

    def __init__(self, real: object) -> None:
        self._real = real

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def _jit_pass_onnx_graph_shape_type_inference(self, graph, params, opset):
        import torch  # called by torch's exporter only: importing this module loads no torch

        small = {
            k: v
            for k, v in params.items()
            if not isinstance(v, torch.Tensor) or v.numel() <= KEEP_ELEMENTS
        }
        return self._real._jit_pass_onnx_graph_shape_type_inference(graph, small, opset)

    def _jit_pass_onnx_deduplicate_initializers(self, graph, params, is_train):
        """Keep every parameter: the pass merges parameters whose *values* are equal, and
        freshly initialised norm layers (all ones, all zeros) would lose their parameters.
        Tied parameters are one tensor and stay one graph input without it."""
        return params


def _torch_export(export: Callable[[], None]) -> None:
    """Run ``export`` with the light shape-inference pass when this torch version allows it."""
    try:  # a private module, where this torch version has it
        from torch.onnx._internal.torchscript_exporter import utils as exporter_utils
    except ImportError:  # another torch layout: export unpatched (slower, same graph)
        export()
        return
    real = getattr(exporter_utils, "_C", None)
    if real is None or not hasattr(real, "_jit_pass_onnx_graph_shape_type_inference"):
        export()
        return
    with _EXPORT_LOCK:
        exporter_utils._C = _LightShapeInference(real)
        try:
            export()
        finally:
            exporter_utils._C = real


def export_weightless(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    """Export ``model`` (a ``torch.nn.Module``) traced on ``example`` to a weightless ONNX graph.

    Legacy TorchScript exporter, opset 17, no constant folding, input ``x`` with a dynamic batch
    axis: the graph a full export followed by :func:`strip_weights` gives (except that
    parameters with equal values are never merged). Parameters are
    exported as graph inputs (``export_params=False``) and turned into data-less initializers,
    so no weight is ever serialised and nothing touches the filesystem: the paper's largest MLP
    (554 M parameters, 2.2 GB) exports in well under a second after its trace.
    """
    import torch  # only to export: `import joulecast` and the client's stripping need no torch

    buffer = io.BytesIO()

    def export() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                buffer,
                dynamo=False,
                export_params=False,
                do_constant_folding=False,
                input_names=["x"],
                dynamic_axes={"x": {0: "batch"}},
                opset_version=17,
            )

    _torch_export(export)
    import onnx  # likewise: stripping bytes on the client needs no onnx

    proto = onnx.load_model_from_string(buffer.getvalue())
    params_to_initializers(proto)
    return strip_model(proto).SerializeToString()
