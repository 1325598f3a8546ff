"""Helpers shared by tests of several packages (importable as ``testkit``: tests/ is on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from joulecast.measurement import Row

ROOT = Path(__file__).resolve().parents[1]


def a_row(key: str = "paper/mlp-n1-h512/s8/b8/e1/train/r0@cpu-x/cpu", **kw: Any) -> Row:
    """A valid ``ok`` row of one small MLP run (estimated energy); ``kw`` replaces fields."""
    base: dict[str, Any] = dict(
        run_key=key,
        plan="paper",
        config_id="mlp-n1-h512",
        family="mlp",
        variant="paper",
        num_layers="1",
        hidden_size="512",
        phase="train",
        repeat=0,
        samples=8,
        batch_size=8,
        epochs=1,
        status="ok",
        hardware="cpu-x",
        device="cpu",
        energy_j=12.5,
        duration_s=1.0,
        energy_source="estimate-codecarbon-cpu-constant",
        energy_is_estimate=True,
    )
    base.update(kw)
    return Row(**base)


def run_python(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a fresh interpreter on the tree under test; raises when it fails."""
    return subprocess.run(
        [sys.executable, *args],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
    )


def joulecast_command(*args: str) -> list[str]:
    """The argv of ``joulecast ARGS`` run by this interpreter from the tree under test."""
    return [sys.executable, "-m", "joulecast.cli", *args]


def config_fields(config: Any) -> dict[str, str]:
    """The row fields that name a ``collector.models.ModelConfig``."""
    return {
        "config_id": config.config_id,
        "family": config.family,
        "num_layers": config.num_layers_text,
        "hidden_size": config.hidden_size_text,
    }


@contextmanager
def shipped_server() -> Iterator[str]:
    """A real ``joulecast serve`` process on a free port, serving the shipped predictors;
    yields its address."""
    from server.spawn import start_serve

    proc, address = start_serve(env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert address is not None, "joulecast serve did not say it was listening"
    try:
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def export_graph(model: Any, x: Any, exporter: str) -> bytes:
    """The weightless ONNX graph of ``model`` on input ``x``: ``legacy`` (TorchScript) or the
    dynamo exporter with a dynamic batch dimension."""
    import warnings

    import torch

    from joulecast.weightless import export_weightless, strip_weights

    if exporter == "legacy":
        return export_weightless(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (x,), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},)
        )
    return strip_weights(program.model_proto)
