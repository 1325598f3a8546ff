"""The ``GraphProfile`` record: what the profiler derives from one ONNX graph."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from joulecast.answer_record import GraphSummary

FAMILIES = ("mlp", "cnn", "rnn", "crnn", "transformer", "other")
FLOP_KINDS = ("conv", "dense", "recurrent", "other")
LARGE_TENSOR_BYTES = 32 * 1024 * 1024
"""Size from which glibc's ``malloc`` always serves a block by ``mmap`` (its largest dynamic
mmap threshold on 64-bit Linux): every step's gradient and optimiser temporaries of such a
weight are fresh pages the kernel must fault in and zero, a cost per byte that smaller weights,
recycled from the heap, do not pay. CPU training feels it; a GPU's caching allocator does not."""


@dataclass(frozen=True)
class GraphProfile(GraphSummary):
    """Per-sample cost of one forward pass, in DeepSpeed's flops-profiler convention.

    ``flops_forward`` counts floating-point operations for one sample; ``flops_train`` is
    3 x forward (backward ~ 2 x forward). Bytes are float32-equivalent sizes as declared by the
    graph's element types.
    """

    weight_bytes: int
    activation_bytes: int
    arithmetic_intensity: float
    recurrent_steps: int
    depth: int
    node_count: int
    warnings: tuple[str, ...] = field(default=())
    input_shape: tuple[int, ...] = field(default=())
    """Shape of one sample of the graph's first input (batch axis dropped; () when unknown)."""
    weight_bytes_large: int = 0
    """The part of ``weight_bytes`` held in tensors of at least :data:`LARGE_TENSOR_BYTES`."""
    activation_sizes: tuple[tuple[int, int], ...] = field(default=())
    """``(bytes per sample, how many tensors)`` of the graph's largest distinct activation
    tensor sizes, largest first: at a batch size, those reaching :data:`LARGE_TENSOR_BYTES` are
    fresh pages on every step (:func:`large_activation_bytes`)."""
    activation_bytes_by_kind: Mapping[str, int] = field(default_factory=dict)
    """``activation_bytes`` split by the kind of the node that writes them (:data:`FLOP_KINDS`;
    nodes without FLOPs, e.g. reshapes, count as ``other``)."""

    def features(self) -> dict[str, float]:
        """The numeric features predictors use (FLOPs per sample, bytes, counts)."""
        out: dict[str, float] = {
            "flops_forward": float(self.flops_forward),
            "flops_train": float(self.flops_train),
        }
        for kind in FLOP_KINDS:
            out[f"flops_{kind}"] = float(self.flops_by_kind.get(kind, 0))
        out.update(
            params=float(self.params),
            weight_bytes=float(self.weight_bytes),
            weight_bytes_large=float(self.weight_bytes_large),
            activation_bytes=float(self.activation_bytes),
            activation_bytes_conv=float(self.activation_bytes_by_kind.get("conv", 0)),
            arithmetic_intensity=float(self.arithmetic_intensity),
            recurrent_steps=float(self.recurrent_steps),
            depth=float(self.depth),
        )
        return out

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict with every field (``flops_by_kind`` a plain dict, warnings a list)."""
        d = asdict(self)
        d["flops_by_kind"] = {k: int(self.flops_by_kind.get(k, 0)) for k in FLOP_KINDS}
        d["activation_bytes_by_kind"] = {
            k: int(self.activation_bytes_by_kind.get(k, 0)) for k in FLOP_KINDS
        }
        d["activation_sizes"] = [list(pair) for pair in self.activation_sizes]
        d["warnings"] = list(self.warnings)
        d["input_shape"] = list(self.input_shape)
        return d


def large_activation_bytes(profile: GraphProfile, batch_size: int) -> int:
    """Activation bytes per sample in tensors that reach :data:`LARGE_TENSOR_BYTES` at
    ``batch_size`` (a tensor holds the whole batch)."""
    batch = max(int(batch_size), 1)
    return sum(
        size * n for size, n in profile.activation_sizes if size * batch >= LARGE_TENSOR_BYTES
    )
