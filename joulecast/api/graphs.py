"""A model, as the API takes it, to the weightless ONNX graph a prediction is made from.

A ``torch.nn.Module`` is exported in memory by the collector's own exporter
(:func:`joulecast.weightless.export_weightless`: weights never serialised, the batch axis
dynamic); an ONNX file is stripped while it is read, ONNX bytes on the wire, an
``onnx.ModelProto`` by copy. torch and onnx are never imported here for an input that is not
theirs: a caller holding a module or a proto has already imported them.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from joulecast.errors import ExportError, InvalidArgument
from joulecast.weightless import export_weightless, strip_weights, strip_weights_file

_UNSUPPORTED = re.compile(r"operator '([^']+)'")


MAX_MODEL_FILE_BYTES = 4 * 1024**3
"""Largest ONNX file read (weights included; they are stripped)."""


def check_input_file(path: Path, max_bytes: int = MAX_MODEL_FILE_BYTES) -> Path:
    """Refuse, before reading a byte, what is not a regular file of at most ``max_bytes``
    (``/dev/zero``, a FIFO, a folder) so that the CLI never reads without end."""
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise InvalidArgument(f"no such file: {path}") from exc
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise InvalidArgument(f"{path} is not a regular file")
    if info.st_size > max_bytes:
        raise InvalidArgument(f"{path} is {info.st_size:,} bytes; the limit is {max_bytes:,}")
    return path


def is_torch_module(model: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def _is_onnx_proto(model: object) -> bool:
    onnx = sys.modules.get("onnx")
    return onnx is not None and isinstance(model, onnx.ModelProto)


def weightless_graph(model: Any, example_input: Any = None) -> bytes:
    """The weightless ONNX bytes of ``model``: a ``torch.nn.Module`` (with ``example_input``,
    a tensor shaped like one batch of its input), an ONNX file's path, ONNX bytes or an
    ``onnx.ModelProto`` (whose graph carries its input shapes: no ``example_input``)."""
    if is_torch_module(model):
        if example_input is None:
            raise InvalidArgument(
                f"a torch.nn.Module ({type(model).__name__}) needs example_input: a tensor "
                "shaped like one batch of its input, e.g. torch.zeros(1, 128)"
            )
        return export_module(model, example_input)
    if example_input is not None:
        raise InvalidArgument(
            "example_input is only for a torch.nn.Module: an ONNX graph carries its input shapes"
        )
    if isinstance(model, str | os.PathLike):
        return strip_weights_file(check_input_file(Path(model)))
    if isinstance(model, bytes | bytearray | memoryview) or _is_onnx_proto(model):
        if isinstance(model, bytes | bytearray | memoryview) and not len(model):
            raise InvalidArgument("the ONNX bytes are empty")
        return strip_weights(model)
    raise InvalidArgument(
        "model must be a torch.nn.Module, an ONNX file's path, ONNX bytes or an "
        f"onnx.ModelProto, not {type(model).__name__}"
    )


def export_module(module: Any, example_input: Any) -> bytes:
    """``module`` traced on ``example_input`` as a weightless graph; any failure of torch's
    exporter (an operator it cannot export, a forward pass that fails on the input) becomes
    one :class:`ExportError` naming the module and, where torch says it, the operator."""
    import torch

    name = type(module).__name__
    if not isinstance(example_input, torch.Tensor):
        raise InvalidArgument(
            f"example_input of {name} must be a torch.Tensor shaped like one batch of its "
            f"input (e.g. torch.zeros(1, 128)), not {type(example_input).__name__}"
        )
    shape = tuple(example_input.shape)
    try:
        return export_weightless(module, example_input)
    except Exception as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        found = _UNSUPPORTED.search(message)
        unsupported = getattr(getattr(torch.onnx, "errors", None), "UnsupportedOperatorError", ())
        if isinstance(exc, unsupported) and found:
            raise ExportError(
                f"cannot export {name} to ONNX: torch's exporter does not support its "
                f"operator {found.group(1)} (the first one it met; torch: {message})"
            ) from exc
        raise ExportError(
            f"cannot export {name} to ONNX on an input of shape {shape}: "
            f"{type(exc).__name__}: {message}"
        ) from exc
