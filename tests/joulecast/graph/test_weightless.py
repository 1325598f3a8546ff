"""Weightless graphs: same graph as a full export, same profile, no data files read."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from collector.models import INPUT_SHAPE, ModelConfig, build_model
from joulecast import profile_cli
from joulecast.errors import InvalidArgument
from joulecast.graph import profile_graph
from joulecast.weightless import (
    WEIGHTLESS_KEY,
    export_weightless,
    is_weightless,
    strip_weights,
    strip_weights_file,
)

X = torch.zeros(1, *INPUT_SHAPE)


def _full_export(model: nn.Module, path: Path, external: bool = False) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (X,),
            str(path),
            dynamo=False,
            do_constant_folding=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
            opset_version=17,
        )
    if external:
        proto = onnx.load(str(path))
        onnx.save_model(
            proto, str(path), save_as_external_data=True, location="w.bin", size_threshold=0
        )


def _models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    bn = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 126 * 62, 10)
    )
    with torch.no_grad():  # a trained BatchNorm: no two tensors with equal values
        for t in (*bn.parameters(), *bn.buffers()):
            if t.is_floating_point():
                t.uniform_(0.5, 1.5)
    return {
        "rnn": build_model(ModelConfig("rnn", (2,), (128,))),
        "crnn": build_model(ModelConfig("crnn", (2, 2), (64, 64))),
        "bn": bn.eval(),
    }


def _initializers(model: onnx.ModelProto) -> set[bytes]:
    return {t.SerializeToString() for t in model.graph.initializer}


@pytest.mark.parametrize("name", ["rnn", "crnn", "bn"])
def test_export_weightless_equals_full_export_stripped(name: str, tmp_path: Path) -> None:
    model = _models()[name]
    _full_export(model, tmp_path / "full.onnx")
    full_bytes = (tmp_path / "full.onnx").read_bytes()
    stripped = onnx.load_model_from_string(strip_weights(full_bytes))
    exported = onnx.load_model_from_string(export_weightless(model, X))
    assert exported.graph.node == stripped.graph.node
    assert _initializers(exported) == _initializers(stripped)
    assert exported.graph.input == stripped.graph.input
    assert is_weightless(exported) and is_weightless(stripped)
    assert all(not t.raw_data for t in exported.graph.initializer)
    assert profile_graph(full_bytes) == profile_graph(strip_weights(full_bytes))
    assert profile_graph(full_bytes) == profile_graph(export_weightless(model, X))


def test_external_data_model_is_read_without_its_data(tmp_path: Path) -> None:
    model = _models()["crnn"]
    path = tmp_path / "model.onnx"
    _full_export(model, path, external=True)
    full = profile_graph(export_weightless(model, X))
    (tmp_path / "w.bin").unlink()  # any attempt to read it would now fail
    stripped = strip_weights_file(path)
    proto = onnx.load_model_from_string(stripped)
    assert all(
        t.data_location == onnx.TensorProto.DEFAULT and not t.external_data
        for t in proto.graph.initializer
    )
    assert any(p.key == WEIGHTLESS_KEY and p.value == "1" for p in proto.metadata_props)
    assert profile_graph(stripped) == full


def test_equal_valued_parameters_are_not_merged() -> None:
    # Fresh norm layers are all ones / zeros: the legacy exporter would merge them.
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.GroupNorm(4, 16), nn.InstanceNorm2d(16, affine=True)
    )
    profile = profile_graph(export_weightless(model.eval(), X))
    assert profile.params == sum(p.numel() for p in model.parameters())


def test_strip_weights_refuses_garbage(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        strip_weights_file(tmp_path / "missing.onnx")
    with pytest.raises(InvalidArgument):
        strip_weights(b"\xff\xff\xff")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="joulecast")
    profile_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_profile_cli_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _models()["crnn"]
    path = tmp_path / "model.onnx"
    _full_export(model, path, external=True)
    (tmp_path / "w.bin").unlink()  # the weights are never read (a mode of 0 stops no root)
    assert _cli(["profile", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("family", "params", "flops_forward", "flops_train", "flops_by_kind", "warnings"):
        assert key in out
    assert out["family"] == "crnn"
    assert out["params"] == sum(p.numel() for p in model.parameters())
    assert _cli(["profile", str(path)]) == 0
    assert "crnn" in capsys.readouterr().out


def test_profile_cli_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"")
    assert _cli(["profile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert _cli(["profile", str(tmp_path / "nope.onnx")]) == 2
