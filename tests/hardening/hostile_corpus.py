"""The hostile-input corpus: every case, how to build it, and what the server must answer.

``python tests/hardening/hostile_corpus.py`` rewrites the committed files of
``tests/data/hostile/`` (small cases, byte for byte deterministic) and their ``index.json``.
Cases too big to commit (a 100k-node graph, oversized messages) and cases whose paths depend on
the machine (a symlink, a file in a temporary folder) are built by the tests from :func:`dynamic`.

Each case names the status code and a phrase the message must contain. ``OK`` means the graph is
accepted with a warning: an unknown op or a missing shape is not an attack, and the profiler
counts it as 0 FLOPs and says so.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx
from onnx import TensorProto, helper

CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "hostile"
INDEX = CORPUS_DIR / "index.json"
IR_VERSION = 8
OPSET = 17

INVALID = "INVALID_ARGUMENT"
EXHAUSTED = "RESOURCE_EXHAUSTED"
PRECONDITION = "FAILED_PRECONDITION"
NOT_FOUND = "NOT_FOUND"
OK = "OK"
BOUNDED = "OK_OR_REFUSED"
"""Accepted with finite, non-negative numbers, or refused with INVALID_ARGUMENT or
RESOURCE_EXHAUSTED: which one is the profiler's call; never INTERNAL, never a hang."""


@dataclass(frozen=True)
class Case:
    """One hostile request. ``fields`` override the request options (batch_size...);
    ``needle`` must appear (case-insensitively) in the status message, or in a warning for OK;
    ``forbidden`` names file paths the server must never open."""

    name: str
    graph: bytes = field(repr=False)
    code: str
    needle: str
    fields: dict = field(default_factory=dict)
    forbidden: tuple[str, ...] = ()
    rpc: str = "unary"  # unary | stream

    def index_entry(self, committed: bool) -> dict:
        entry = {k: v for k, v in asdict(self).items() if k != "graph"}
        entry["forbidden"] = list(self.forbidden)
        entry["file"] = f"{self.name}.bin" if committed else None
        entry["sha256"] = hashlib.sha256(self.graph).hexdigest() if committed else None
        return entry


# -- building blocks ------------------------------------------------------------------------


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto] | None = None,
    initializers: list[TensorProto] = (),
    outputs: list[onnx.ValueInfoProto] | None = None,
    opset: int = OPSET,
    domains: tuple[tuple[str, int], ...] = (),
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "hostile",
        inputs if inputs is not None else [_vi("x", ["batch", 16])],
        outputs if outputs is not None else [_vi("y", None)],
        initializer=list(initializers),
    )
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in domains)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="joulecast-hostile")
    model.ir_version = IR_VERSION
    return model


def _vi(name: str, shape: list | None, elem: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _weight(name: str, dims: list[int], data: bool = True) -> TensorProto:
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    if data:
        n = 1
        for d in dims:
            n *= d
        t.float_data.extend([0.5] * n)
    return t


def valid_mlp() -> onnx.ModelProto:
    """x[batch,16] -> Gemm(16->8) -> Relu -> y: the smallest graph the profiler accepts."""
    return _model(
        [
            helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1, name="fc"),
            helper.make_node("Relu", ["h"], ["y"], name="act"),
        ],
        initializers=[_weight("w", [8, 16]), _weight("b", [8])],
    )


def _external(location: str | None, *, in_attribute: bool = False) -> bytes:
    """A graph whose weight points at external data at ``location`` (None: no location key)."""
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 16])
    t.data_location = TensorProto.EXTERNAL
    if location is not None:
        entry = t.external_data.add()
        entry.key, entry.value = "location", location
        for key, value in (("offset", "0"), ("length", "512")):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
    if in_attribute:
        nodes = [
            helper.make_node("Constant", [], ["w"], value=t, name="const"),
            helper.make_node("Gemm", ["x", "w"], ["y"], transB=1, name="fc"),
        ]
        return _model(nodes).SerializeToString()
    model = valid_mlp()
    model.graph.initializer[0].CopyFrom(t)
    return model.SerializeToString()


def _nested_if(depth: int) -> bytes:
    """``If`` nodes nested ``depth`` levels deep (each branch holds the next ``If``)."""
    inner = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["out0"])], "leaf", [], [_vi("out0", None)]
    )
    for level in range(1, depth + 1):
        node = helper.make_node(
            "If", ["cond"], [f"out{level}"], then_branch=inner, else_branch=inner
        )
        inner = helper.make_graph([node], f"level{level}", [], [_vi(f"out{level}", None)])
    top = list(inner.node)
    model = _model(
        top,
        inputs=[_vi("x", [1, 16]), _vi("cond", [], TensorProto.BOOL)],
        outputs=[_vi(f"out{depth}", None)],
    )
    return model.SerializeToString()


def varint(n: int) -> bytes:
    """``n`` (>= 0) as a protobuf varint, written apart from joulecast.protowire so that the
    parser's tests do not build their inputs with the code they test."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(field_no: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(field_no << 3 | 2) + varint(len(payload)) + payload


def _protobuf_bomb(levels: int) -> bytes:
    """Raw protobuf nesting GraphProto -> NodeProto -> AttributeProto.g -> GraphProto ...
    ``levels`` deep: past protobuf's recursion limit (100), so decoding itself must refuse."""
    graph = b""
    for _ in range(levels):
        attribute = _ld(1, b"g") + _ld(6, graph)  # AttributeProto: name=1, g=6
        node = _ld(4, b"If") + _ld(5, attribute)  # NodeProto: op_type=4, attribute=5
        graph = _ld(1, node)  # GraphProto: node=1
    opset = _ld(8, varint(2 << 3) + varint(OPSET))  # ModelProto.opset_import=8 {version=2}
    return varint(1 << 3) + varint(IR_VERSION) + opset + _ld(7, graph)  # ir_version=1, graph=7


def _sequence_bomb(levels: int) -> bytes:
    """An input whose type is a sequence of a sequence of ... ``levels`` deep."""
    tp = helper.make_tensor_type_proto(TensorProto.FLOAT, [1, 16])
    for _ in range(levels):
        tp = helper.make_sequence_type_proto(tp)
    model = valid_mlp()
    model.graph.input.append(helper.make_value_info("s", tp))
    return model.SerializeToString()


def _wide(n_nodes: int) -> bytes:
    """A chain of ``n_nodes`` Relu nodes."""
    nodes = [
        helper.make_node("Relu", [f"v{i}" if i else "x"], [f"v{i + 1}" if i + 1 < n_nodes else "y"])
        for i in range(n_nodes)
    ]
    return _model(nodes).SerializeToString()


# -- the corpus ---------------------------------------------------------------------------


def static_cases() -> list[Case]:
    """Every case small and machine-independent enough to commit."""
    valid = valid_mlp().SerializeToString()
    rng = random.Random(20240913)
    cases = [
        Case("empty", b"", INVALID, "onnx_model is empty"),
        Case("one_zero_byte", b"\x00", INVALID, "not an ONNX model"),
        Case("random_4k", rng.randbytes(4096), INVALID, "ONNX"),
        Case("random_64k", rng.randbytes(65536), INVALID, "ONNX"),
        Case("text", b"hello, this is not a model\n" * 10, INVALID, "ONNX"),
        Case("truncated_half", valid[: len(valid) // 2], INVALID, "ONNX"),
        Case("truncated_10_bytes", valid[:10], INVALID, "ONNX"),
        Case("truncated_last_byte", valid[:-1], INVALID, "ONNX"),
        Case("wrong_magic_zip", b"PK\x03\x04" + valid, INVALID, "ONNX"),
        Case("wrong_magic_elf", b"\x7fELF\x02\x01\x01\x00" + valid, INVALID, "ONNX"),
        Case("wrong_magic_pickle", b"\x80\x04\x95" + valid, INVALID, "ONNX"),
        # PNG's signature happens to decode as unknown protobuf fields, which protobuf skips:
        # the graph after it is a valid model, and is answered as one.
        Case("png_signature_prefix", b"\x89PNG\r\n\x1a\n" + valid, OK, ""),
        Case("json_not_protobuf", b'{"graph": {"node": []}}', INVALID, "ONNX"),
        Case("no_opset", _no_opset(valid), INVALID, "opset"),
        Case("no_nodes", _model([]).SerializeToString(), INVALID, "no graph nodes"),
        Case(
            "external_relative",
            _external("weights.bin"),
            INVALID,
            "external data",
            forbidden=("weights.bin",),
        ),
        Case(
            "external_nested_dotdot",
            _external("a/../../../../../../../../etc/passwd"),
            INVALID,
            "external data",
            forbidden=("passwd",),
        ),
        Case(
            "external_absolute",
            _external("/etc/hostname"),
            INVALID,
            "external data",
            forbidden=("hostname",),
        ),
        Case("external_no_location", _external(None), INVALID, "external data"),
        Case(
            "external_in_constant_attribute",
            _external("/etc/passwd", in_attribute=True),
            INVALID,
            "external data",
            forbidden=("passwd",),
        ),
        Case("dim_1e12_input", _input_dims([10**12, 16]), EXHAUSTED, "dimension"),
        Case("dim_negative_initializer", _negative_initializer(), INVALID, "negative"),
        Case("dim_negative_input", _input_dims([-5, 16]), INVALID, "negative"),
        Case("overflowing_product", _input_dims([2**30, 2**30, 2**30, 16]), EXHAUSTED, "elements"),
        Case("overflowing_initializer", _huge_initializer(), EXHAUSTED, "elements"),
        Case("reshape_to_1e12", _reshape_huge(), EXHAUSTED, "dimension"),
        Case("nesting_past_limit", _nested_if(12), EXHAUSTED, "nesting"),
        Case("protobuf_recursion_bomb", _protobuf_bomb(150), INVALID, "ONNX"),
        Case("sequence_type_bomb", _sequence_bomb(30), OK, ""),
        Case("unknown_domain_op", _unknown_domain(), OK, "no FLOP rule"),
        Case("unknown_default_op", _unknown_op(), OK, "no FLOP rule"),
        Case("cycle", _cycle(), INVALID, "the graph has a cycle"),
        Case("self_loop", _self_loop(), INVALID, "the graph has a cycle"),
        Case("unsorted_nodes", _unsorted(), OK, "not in topological order"),
        Case("missing_shapes", _missing_shapes(), OK, ""),
        Case("undefined_input", _undefined_input(), OK, ""),
        Case("zero_size_tensor", _zero_size(), INVALID, "declares dimension 0"),
        Case("opset_from_the_future", _future_opset(), INVALID, "opset 10000 does not exist"),
        Case("opset_99", _future_opset(99), INVALID, "opset 99 does not exist"),
        Case("batch_zero", valid, INVALID, "batch_size", fields={"batch_size": 0}),
        Case("batch_huge", valid, INVALID, "batch_size", fields={"batch_size": 2**40}),
        Case("samples_negative", valid, INVALID, "samples", fields={"samples": -1}),
        Case("epochs_zero", valid, INVALID, "epochs", fields={"epochs": 0}),
        Case("gpu_util_150", valid, INVALID, "observed_gpu_util", fields={"gpu_util": 150.0}),
        Case("gpu_util_nan", valid, INVALID, "observed_gpu_util", fields={"gpu_util": "nan"}),
        Case("unknown_hardware", valid, NOT_FOUND, "tpu-v9", fields={"hardware": "tpu-v9"}),
        Case("hardware_name_300", valid, INVALID, "hardware", fields={"hardware": "h" * 300}),
        Case(
            "hardware_path",
            valid,
            INVALID,
            "hardware name '../../etc'",
            fields={"hardware": "../../etc"},
        ),
        Case("stream_of_garbage", rng.randbytes(20000), INVALID, "ONNX", rpc="stream"),
        # Round 2: each must cost one profiling worker at most, never the server.
        Case("function_bomb_2_40", function_bomb(40), EXHAUSTED, ""),
        Case("concat_doubling_24", concat_doubling(24), EXHAUSTED, ""),
        Case("lstm_hidden_negative", lstm_negative_hidden(), BOUNDED, ""),
        Case(
            "stream_external",
            _external("/etc/passwd"),
            INVALID,
            "external data",
            forbidden=("passwd",),
            rpc="stream",
        ),
    ]
    return cases + profiler_cases()


def profiler_cases() -> list[Case]:
    """Graphs that make an unbounded profiler loop, allocate or overflow."""
    return [
        Case("function_call_bomb_40", function_bomb(40, ("a", "b")), EXHAUSTED, "nodes"),
        Case("function_recursion", _function_recursion(), INVALID, "calls itself"),
        Case("function_nesting_past_limit", _function_nesting(12), EXHAUSTED, "nesting"),
        Case("concat_doubling_22", _concat_doubling(22), EXHAUSTED, "shape-value"),
        Case("conv_group_zero", _conv(group=0), INVALID, "group"),
        Case("conv_group_negative", _conv(group=-2), INVALID, "group"),
        Case("conv_group_not_dividing", _conv(group=3), INVALID, "group"),
        Case("conv_pads_2_40", _conv(pads=2**40), EXHAUSTED, "dimension"),
        Case("conv_pads_2_62", _conv(pads=2**62), EXHAUSTED, "dimension"),
        Case("constant_of_shape_3_dims", _constant_of_shape(3), EXHAUSTED, "elements"),
        Case("constant_of_shape_40_dims", _constant_of_shape(40), EXHAUSTED, "elements"),
        Case("lstm_negative_hidden", _lstm(hidden=-5), INVALID, "hidden_size"),
        Case("flops_2_61", _flops_bomb(), EXHAUSTED, "ceiling"),
        Case("symbolic_dims_5k", _symbolic_dims(5_000), OK, "symbolic input dim"),
    ]


def function_bomb(levels: int, names: tuple[str, str] = ("x", "y")) -> bytes:
    """Local functions F0..Fk, each F_j calling F_{j-1} twice, one node calling Fk: a tiny
    graph whose inlined form has 2^k nodes (a function bomb). ``names``: the functions' input
    and output (two corpus cases differ only by them)."""
    domain = "bomb"
    x, y = names
    functions = [
        helper.make_function(
            domain,
            "F0",
            [x],
            [y],
            [helper.make_node("Relu", [x], [y])],
            [helper.make_opsetid("", OPSET)],
        )
    ]
    for j in range(1, levels + 1):
        functions.append(
            helper.make_function(
                domain,
                f"F{j}",
                [x],
                [y],
                [
                    helper.make_node(f"F{j - 1}", [x], ["t"], domain=domain),
                    helper.make_node(f"F{j - 1}", ["t"], [y], domain=domain),
                ],
                [helper.make_opsetid("", OPSET), helper.make_opsetid(domain, 1)],
            )
        )
    model = _model(
        [helper.make_node(f"F{levels}", ["x"], ["y"], domain=domain)],
        domains=((domain, 1),),
    )
    model.functions.extend(functions)
    return model.SerializeToString()


def concat_doubling(steps: int) -> bytes:
    """Shape(x) then ``steps`` Concat(s, s): shape-value propagation doubles a vector at each
    step, 2^steps elements from under a kilobyte (a Concat memory bomb)."""
    nodes = [helper.make_node("Shape", ["x"], ["s0"])]
    for k in range(1, steps + 1):
        nodes.append(helper.make_node("Concat", [f"s{k - 1}", f"s{k - 1}"], [f"s{k}"], axis=0))
    nodes.append(helper.make_node("Relu", ["x"], ["y"]))
    return _model(
        nodes, outputs=[_vi("y", None), _vi(f"s{steps}", None, TensorProto.INT64)]
    ).SerializeToString()


def constant_of_shape(dims: int) -> bytes:
    """ConstantOfShape of ``dims`` dimensions of 2^31-1 each: counts past int64 (case 8)."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [dims], [2**31 - 1] * dims)
    return _model(
        [
            helper.make_node("ConstantOfShape", ["shape"], ["c"]),
            helper.make_node("Relu", ["x"], ["y"]),
        ],
        initializers=[shape],
        outputs=[_vi("y", None), _vi("c", None)],
    ).SerializeToString()


def lstm_negative_hidden() -> bytes:
    """An LSTM declaring ``hidden_size=-5`` (case 8: once answered with negative FLOPs)."""
    return _model(
        [helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=-5)],
        inputs=[_vi("x", [10, 1, 4])],
        initializers=[_weight("w", [1, 20, 4], data=False), _weight("r", [1, 20, 5], data=False)],
    ).SerializeToString()


def dynamic(tmp: Path, cwd: Path, max_message_bytes: int, max_graph_bytes: int) -> list[Case]:
    """Cases built at test time: external data into ``tmp`` (through ``..`` from ``cwd`` and
    through a symlink), 100k nodes, and messages and streams over the server's limits."""
    secret = tmp / "secret-weights.bin"
    secret.write_bytes(b"\x00" * 512)
    link = tmp / "link-to-secret.bin"
    if not link.exists():
        link.symlink_to(secret)
    relative = Path(_relpath(secret, cwd))
    forbidden = (str(secret), secret.name, link.name)
    valid = valid_mlp().SerializeToString()
    return [
        Case(
            "external_tmp_absolute",
            _external(str(secret)),
            INVALID,
            "external data",
            forbidden=forbidden,
        ),
        Case(
            "external_tmp_relative",
            _external(str(relative)),
            INVALID,
            "external data",
            forbidden=forbidden,
        ),
        Case(
            "external_tmp_nested",
            _external(f"a/b/../../{relative}"),
            INVALID,
            "external data",
            forbidden=forbidden,
        ),
        Case(
            "external_symlink", _external(str(link)), INVALID, "external data", forbidden=forbidden
        ),
        Case("nodes_100k", _wide(100_000), EXHAUSTED, "nodes", rpc="stream"),
        Case("oversized_message", valid + b"\x00" * (max_message_bytes + 1), EXHAUSTED, ""),
        Case(
            "oversized_stream",
            valid + b"\x00" * (max_graph_bytes + 1),
            EXHAUSTED,
            str(max_graph_bytes),
            rpc="stream",
        ),
    ]


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target, start)


def _no_opset(valid: bytes) -> bytes:
    model = onnx.ModelProto()
    model.ParseFromString(valid)
    del model.opset_import[:]
    return model.SerializeToString()


def _input_dims(dims: list[int]) -> bytes:
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    return _model(nodes, inputs=[_vi("x", dims)]).SerializeToString()


def _negative_initializer() -> bytes:
    model = valid_mlp()
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-8, 16])
    model.graph.initializer[0].CopyFrom(w)
    return model.SerializeToString()


def _huge_initializer() -> bytes:
    model = valid_mlp()
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**31 - 1, 2**31 - 1])
    model.graph.initializer[0].CopyFrom(w)
    return model.SerializeToString()


def _reshape_huge() -> bytes:
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [10**12, 1])
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"])]
    return _model(nodes, inputs=[_vi("x", [1, 16])], initializers=[shape]).SerializeToString()


def _unknown_domain() -> bytes:
    nodes = [
        helper.make_node("Pwn", ["x"], ["h"], domain="com.evil", payload="rm -rf /"),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    return _model(nodes, domains=(("com.evil", 1),)).SerializeToString()


def _unknown_op() -> bytes:
    nodes = [helper.make_node("NoSuchOp", ["x"], ["y"])]
    return _model(nodes).SerializeToString()


def _cycle() -> bytes:
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
        helper.make_node("Identity", ["b"], ["y"]),
    ]
    return _model(nodes).SerializeToString()


def _self_loop() -> bytes:
    nodes = [helper.make_node("Add", ["x", "y"], ["y"], name="loop")]
    return _model(nodes).SerializeToString()


def _missing_shapes() -> bytes:
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    inputs = [
        helper.make_value_info("x", onnx.TypeProto()),
        helper.make_value_info("w", onnx.TypeProto()),
    ]
    return _model(nodes, inputs=inputs).SerializeToString()


def _undefined_input() -> bytes:
    nodes = [helper.make_node("MatMul", ["x", "ghost"], ["y"])]
    return _model(nodes).SerializeToString()


def _zero_size() -> bytes:
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)]
    return _model(
        nodes, inputs=[_vi("x", [0, 16])], initializers=[_weight("w", [0, 16])]
    ).SerializeToString()


def _future_opset(version: int = 10_000) -> bytes:
    model = valid_mlp()
    model.opset_import[0].version = version
    if version == 10_000:
        model.ir_version = 10_000
    return model.SerializeToString()


def _unsorted() -> bytes:
    """The valid MLP with its nodes listed last first: acyclic, so sorted and profiled."""
    model = valid_mlp()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    return model.SerializeToString()


def _function_recursion() -> bytes:
    domain = "loop"
    ops = [helper.make_opsetid("", OPSET), helper.make_opsetid(domain, 1)]
    f = helper.make_function(
        domain, "F", ["a"], ["b"], [helper.make_node("G", ["a"], ["b"], domain=domain)], ops
    )
    g = helper.make_function(
        domain, "G", ["a"], ["b"], [helper.make_node("F", ["a"], ["b"], domain=domain)], ops
    )
    model = _model([helper.make_node("F", ["x"], ["y"], domain=domain)], domains=((domain, 1),))
    model.functions.extend([f, g])
    return model.SerializeToString()


def _function_nesting(depth: int) -> bytes:
    """A local function whose body nests If subgraphs ``depth`` deep."""
    domain = "deep"
    inner = helper.make_graph(
        [helper.make_node("Relu", ["a"], ["r"])], "leaf", [], [_vi("r", None)]
    )
    for i in range(depth):
        cond = helper.make_node(
            "Constant", [], [f"c{i}"], value=helper.make_tensor("v", TensorProto.BOOL, [], [True])
        )
        node = helper.make_node("If", [f"c{i}"], ["r"], then_branch=inner, else_branch=inner)
        inner = helper.make_graph([cond, node], f"level{i}", [], [_vi("r", None)])
    body = [helper.make_node("Identity", ["a"], ["a2"]), *inner.node]
    ops = [helper.make_opsetid("", OPSET)]
    f = helper.make_function(domain, "Deep", ["a"], ["r"], body, ops)
    model = _model([helper.make_node("Deep", ["x"], ["y"], domain=domain)], domains=((domain, 1),))
    model.functions.append(f)
    return model.SerializeToString()


def _concat_doubling(k: int) -> bytes:
    """Shape(x), then k Concat(s, s): a shape vector of 2^k elements if propagated."""
    nodes = [helper.make_node("Shape", ["x"], ["s0"])]
    for i in range(k):
        nodes.append(helper.make_node("Concat", [f"s{i}", f"s{i}"], [f"s{i + 1}"], axis=0))
    nodes.append(helper.make_node("ConstantOfShape", [f"s{k}"], ["y"]))
    return _model(nodes).SerializeToString()


def _conv(group: int = 1, pads: int = 0) -> bytes:
    """x[1,4,16,16] -> Conv(4->8, 3x3) with the given group and pads."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 4, 3, 3])
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], group=group, pads=[pads] * 4)]
    return _model(nodes, inputs=[_vi("x", [1, 4, 16, 16])], initializers=[w]).SerializeToString()


def _constant_of_shape(rank: int) -> bytes:
    shape = helper.make_tensor("shape", TensorProto.INT64, [rank], [2**31 - 1] * rank)
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["c"]),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    return _model(nodes, inputs=[_vi("x", [1])], initializers=[shape]).SerializeToString()


def _lstm(hidden: int) -> bytes:
    nodes = [helper.make_node("LSTM", ["x", "w", "r"], ["y"], hidden_size=hidden)]
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1, 20, 16])
    r = TensorProto(name="r", data_type=TensorProto.FLOAT, dims=[1, 20, 5])
    return _model(nodes, inputs=[_vi("x", [8, 1, 16])], initializers=[w, r]).SerializeToString()


def _flops_bomb() -> bytes:
    """A weightless MatMul of [2^20, 2^20] x [2^20, 2^20]: 2^61 FLOPs, no data."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    return _model(nodes, inputs=[_vi("x", [1, 2**20, 2**20])], initializers=[w]).SerializeToString()


def _symbolic_dims(n: int) -> bytes:
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    return _model(
        nodes, inputs=[_vi("x", ["batch", *(f"d{i}" for i in range(n))])]
    ).SerializeToString()


# -- committed files ----------------------------------------------------------------------


def load_static() -> list[Case]:
    """The committed cases, read back from ``tests/data/hostile``."""
    index = json.loads(INDEX.read_text())
    cases = []
    for entry in index["cases"]:
        graph = (CORPUS_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(graph).hexdigest() == entry["sha256"], entry["name"]
        cases.append(
            Case(
                entry["name"],
                graph,
                entry["code"],
                entry["needle"],
                entry["fields"],
                tuple(entry["forbidden"]),
                entry["rpc"],
            )
        )
    return cases


def write(directory: Path = CORPUS_DIR) -> list[Path]:
    """Write every static case and the index into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    entries = []
    for case in static_cases():
        path = directory / f"{case.name}.bin"
        path.write_bytes(case.graph)
        written.append(path)
        entries.append(case.index_entry(committed=True))
    index = {
        "about": "Hostile inputs for the joulecast server; written by "
        "tests/hardening/hostile_corpus.py. code: the expected gRPC status (OK: accepted "
        "with a warning); needle: a phrase the status message (or a warning) contains.",
        "cases": entries,
    }
    (directory / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    written.append(directory / "index.json")
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS_DIR
    print(f"wrote {len(write(out))} files to {out}")
