"""Graph descriptors: a one-layer ONNX graph named in one line of text, built without torch.

Measurements made elsewhere often describe their model instead of shipping it (Getzner et al.
measured single ``Linear``, ``Conv2d`` and ``MaxPool2d`` layers). A descriptor names the layer
with PyTorch's argument names plus the input's spatial size::

    Linear(in_features=4645, out_features=1920)
    Conv2d(in_channels=80, out_channels=29, kernel_size=7, stride=1, padding=2, image_size=127)
    MaxPool2d(in_channels=493, kernel_size=6, stride=5, padding=3, image_size=152)

:func:`build_descriptor` returns the weightless graph that exporting the PyTorch layer with
:func:`joulecast.weightless.export_weightless` gives (same ops, attributes, initializer shapes,
opset 17 and input ``x`` with a dynamic batch axis), so the profiler counts the same per-sample
FLOPs and parameters; building it with ``onnx.helper`` takes microseconds instead of a trace.
Square kernels, strides and paddings; dilation 1; one group; ``ceil_mode`` off.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import onnx
from onnx import TensorProto, helper

from joulecast.errors import InvalidArgument
from joulecast.weightless import WEIGHTLESS_KEY

OPSET = 17
MAX_DIM = 1 << 20
"""Largest channel, feature or image size a descriptor may declare."""

_DESCRIPTOR = re.compile(r"^\s*([A-Za-z][A-Za-z0-9]*)\s*\((.*)\)\s*$", re.DOTALL)
_ARG = re.compile(r"^\s*([a-z_]+)\s*=\s*([A-Za-z0-9_+-]+)\s*$")


def is_descriptor(text: str) -> bool:
    """True when ``text`` looks like ``Layer(name=value, ...)`` rather than a file path."""
    return bool(_DESCRIPTOR.match(text)) and not text.strip().lower().endswith(".onnx")


def parse_descriptor(text: str) -> tuple[str, dict[str, int | bool]]:
    """``(layer, arguments)`` of a descriptor; InvalidArgument says what is wrong."""
    found = _DESCRIPTOR.match(text)
    if not found:
        raise InvalidArgument(
            f"graph descriptor {text!r} is not of the form Layer(name=value, ...)"
        )
    layer, body = found.group(1), found.group(2)
    if layer not in LAYERS:
        raise InvalidArgument(f"unknown layer {layer!r} in descriptor; known: {sorted(LAYERS)}")
    args: dict[str, int | bool] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        arg = _ARG.match(part)
        if not arg:
            raise InvalidArgument(f"descriptor argument {part!r} is not name=integer")
        name, raw = arg.groups()
        if name in args:
            raise InvalidArgument(f"descriptor argument {name!r} given twice")
        if raw.lower() in ("true", "false"):
            args[name] = raw.lower() == "true"
            continue
        try:
            args[name] = int(raw)
        except ValueError:
            raise InvalidArgument(f"descriptor argument {name}={raw!r} is not an integer") from None
    return layer, args


def build_descriptor(text: str) -> bytes:
    """The weightless ONNX graph (serialised) of one descriptor."""
    layer, args = parse_descriptor(text)
    builder, required, optional = LAYERS[layer]
    missing = [n for n in required if n not in args]
    if missing:
        raise InvalidArgument(f"{layer} descriptor lacks {', '.join(missing)}")
    unknown = sorted(set(args) - set(required) - set(optional))
    if unknown:
        raise InvalidArgument(f"{layer} descriptor has unknown argument(s) {', '.join(unknown)}")
    values = {**optional, **args}
    for name, value in values.items():
        if isinstance(value, bool):
            continue
        low = 0 if name == "padding" or (name == "stride" and layer == "MaxPool2d") else 1
        if not low <= value <= MAX_DIM:
            raise InvalidArgument(f"{layer} {name}={value} must be in [{low}, {MAX_DIM}]")
    return builder(values)


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="joulecast"
    )
    model.ir_version = 8
    model.metadata_props.add(key=WEIGHTLESS_KEY, value="1")
    return model.SerializeToString()


def _weight(name: str, dims: list[int]) -> TensorProto:
    """A data-less float initializer: name, type and dims only (as a weightless export)."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT)
    tensor.dims.extend(dims)
    return tensor


def _io(name: str, dims: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _spatial_out(image: int, kernel: int, stride: int, padding: int, layer: str) -> int:
    out = (image + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise InvalidArgument(
            f"{layer}: kernel_size={kernel} does not fit image_size={image} with padding={padding}"
        )
    return out


def _linear(v: Mapping[str, int | bool]) -> bytes:
    n_in, n_out, bias = int(v["in_features"]), int(v["out_features"]), bool(v["bias"])
    inits = [_weight("weight", [n_out, n_in])] + ([_weight("bias", [n_out])] if bias else [])
    node = helper.make_node(
        "Gemm", ["x", "weight", *(["bias"] if bias else [])], ["y"], alpha=1.0, beta=1.0, transB=1
    )
    graph = helper.make_graph(
        [node], "main_graph", [_io("x", ["batch", n_in])], [_io("y", ["batch", n_out])], inits
    )
    return _model(graph)


def _conv2d(v: Mapping[str, int | bool]) -> bytes:
    c_in, c_out, k = int(v["in_channels"]), int(v["out_channels"]), int(v["kernel_size"])
    s, p, image, bias = int(v["stride"]), int(v["padding"]), int(v["image_size"]), bool(v["bias"])
    inits = [_weight("weight", [c_out, c_in, k, k])] + ([_weight("bias", [c_out])] if bias else [])
    inputs = ["x", "weight", *(["bias"] if bias else [])]
    return _square_window("Conv2d", "Conv", inputs, inits, (c_in, c_out, image, k, s, p), group=1)


def _maxpool2d(v: Mapping[str, int | bool]) -> bytes:
    c, k, p, image = (
        int(v["in_channels"]),
        int(v["kernel_size"]),
        int(v["padding"]),
        int(v["image_size"]),
    )
    s = int(v["stride"]) if int(v["stride"]) > 0 else k
    if 2 * p > k:
        raise InvalidArgument(f"MaxPool2d: padding={p} exceeds half of kernel_size={k}")
    return _square_window("MaxPool2d", "MaxPool", ["x"], [], (c, c, image, k, s, p), ceil_mode=0)


def _square_window(
    layer: str,
    op: str,
    inputs: list[str],
    inits: list[TensorProto],
    shape: tuple[int, int, int, int, int, int],
    **attrs: int,
) -> bytes:
    """The model of one 2-D ``op`` over a square image with square windows; ``shape`` is
    (channels in, channels out, image side, kernel side, stride, padding)."""
    c_in, c_out, image, k, s, p = shape
    out = _spatial_out(image, k, s, p, layer)
    node = helper.make_node(
        op,
        inputs,
        ["y"],
        dilations=[1, 1],
        kernel_shape=[k, k],
        pads=[p, p, p, p],
        strides=[s, s],
        **attrs,
    )
    graph = helper.make_graph(
        [node],
        "main_graph",
        [_io("x", ["batch", c_in, image, image])],
        [_io("y", ["batch", c_out, out, out])],
        inits,
    )
    return _model(graph)


Builder = Callable[[Mapping[str, int | bool]], bytes]
LAYERS: dict[str, tuple[Builder, tuple[str, ...], dict[str, int | bool]]] = {
    "Linear": (_linear, ("in_features", "out_features"), {"bias": True}),
    "Conv2d": (
        _conv2d,
        ("in_channels", "out_channels", "kernel_size", "image_size"),
        {"stride": 1, "padding": 0, "bias": True},
    ),
    # stride 0 stands for PyTorch's default (stride = kernel_size)
    "MaxPool2d": (
        _maxpool2d,
        ("in_channels", "kernel_size", "image_size"),
        {"stride": 0, "padding": 0},
    ),
}
"""Layer name -> (builder, required arguments, optional arguments with defaults)."""
