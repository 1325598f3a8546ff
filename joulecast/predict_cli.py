"""``joulecast predict``: what it predicts for, and who answers it.

The graph: an ONNX file (stripped while read), or ``--torch MODULE:FACTORY --input-shape
1,128,64``: the module the factory returns, exported in memory as ``joulecast.Estimator`` does.

The answer: ``--server HOST:PORT`` asks that server (one that does not answer is an error, with
the hint to start one); ``--local`` or ``--artifacts DIR`` answer in this process
(:class:`joulecast.api.local.InProcessClient`); with neither, the default server when one answers at
``localhost:50051`` within a short wait, else this process, which says so in one line on stderr.
A refused connection is known at once, so that case costs nothing; gRPC is imported only when
something listens.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from client.cli import add_client_args, open_client
from client.format import format_prediction
from joulecast.errors import InvalidArgument, JoulecastError
from joulecast.measurement import PRECISIONS
from rpc import DEFAULT_SERVER

PROBE_TIMEOUT_S = 0.5
"""Longest wait for the default server (TCP connect, then gRPC ready) before answering here."""
START_HINT = "start one with `joulecast serve` (or leave out --server to answer in this process)"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="predict train and test energy of an ONNX model or a torch module"
    )
    p.add_argument(
        "model", type=Path, nargs="?", help="ONNX file (weights are stripped before upload)"
    )
    add_client_args(p, auto_server=True)
    add_local_args(p)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--samples", type=int, default=1578, help="samples per epoch / test pass")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hardware", help="hardware to predict for (default: the server's)")
    p.add_argument("--observed-gpu-util", type=float, help="observed mean GPU utilisation, %%")
    p.add_argument(
        "--region",
        help="ISO 3166-1 alpha-3 country code (e.g. FRA): add gCO2eq per phase from "
        "CodeCarbon's energy-mix data (`joulecast regions` lists the codes)",
    )
    p.add_argument(
        "--price-per-kwh", type=float, help="electricity price per kWh: add a cost per phase"
    )
    p.add_argument(
        "--power-limit-w",
        type=float,
        help="a GPU's power limit in W (default: the board's); a measured GPU is moved to it "
        "by the transfer model",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="what the training's matrix work runs in (default fp32); tf32 (matrix products on "
        "TF32 tensor cores) and mixed precision (autocast) are answered by the GPU transfer "
        "model, for a catalogued GPU",
    )
    p.add_argument(
        "--batch-sizes",
        help="comma list (e.g. 8,32,128,512): one answer per batch size, the cheapest marked",
    )
    p.add_argument(
        "--power-limits", help="comma list of GPU power limits in W, swept with --batch-sizes"
    )
    p.add_argument("--stream", action="store_true", help="always use the streaming upload")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)


def add_local_args(p: argparse.ArgumentParser) -> None:
    """``predict``'s flags for a torch module and for the in-process answer."""
    p.add_argument(
        "--torch",
        metavar="MODULE:FACTORY",
        help="predict for the torch.nn.Module that FACTORY() returns (MODULE: an importable "
        "module or a .py file); with --input-shape, instead of an ONNX file",
    )
    p.add_argument(
        "--input-shape",
        metavar="1,128,64",
        help="shape of one batch of the module's input (its first axis is the batch)",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="answer in this process from the shipped predictors (or --artifacts), no server",
    )
    p.add_argument(
        "--artifacts",
        type=Path,
        help="answer in this process from the predictors published in this folder",
    )


# -- the graph ------------------------------------------------------------------------------


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise InvalidArgument(
            f"--input-shape takes positive integers separated by commas (1,128,64), got {text!r}"
        )
    return shape


def _import_module(name: str) -> Any:
    """A module by dotted name (the current folder first on the path, as ``python -m`` has
    it) or from a ``.py`` file."""
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise InvalidArgument(f"--torch: no such file {path}")
        spec = importlib.util.spec_from_file_location(f"_joulecast_factory_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise InvalidArgument(f"--torch: cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise InvalidArgument(f"--torch: cannot import {name}: {exc}") from exc


def torch_module(spec: str) -> Any:
    """The module that ``FACTORY()`` of ``MODULE:FACTORY`` returns."""
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise InvalidArgument(f"--torch takes MODULE:FACTORY (e.g. mymodels:build), got {spec!r}")
    factory = getattr(_import_module(module_name), attr, None)
    if not callable(factory):
        raise InvalidArgument(f"--torch: {module_name} has no callable {attr!r}")
    model = factory()
    # imported when the command runs: `joulecast --help` stays light
    from joulecast.api.graphs import is_torch_module

    if not is_torch_module(model):
        raise InvalidArgument(
            f"--torch: {spec}() returned a {type(model).__name__}, not a torch.nn.Module"
        )
    return model


def model_graph(args: argparse.Namespace) -> tuple[bytes, str]:
    """The weightless graph to predict for, and how to name it in the answer."""
    if args.torch is not None:
        if args.model is not None:
            raise InvalidArgument("give an ONNX file or --torch, not both")
        if args.input_shape is None:
            raise InvalidArgument("--torch needs --input-shape (one batch of the input, 1,128,64)")
        shape = parse_shape(args.input_shape)
        module = torch_module(args.torch)
        # imported when the command runs: `joulecast --help` stays light
        import torch

        from joulecast.api.graphs import export_module

        return export_module(module, torch.zeros(shape)), args.torch
    if args.model is None:
        raise InvalidArgument("give an ONNX file, or --torch MODULE:FACTORY --input-shape ...")
    if args.input_shape is not None:
        raise InvalidArgument("--input-shape goes with --torch: an ONNX graph has its shapes")
    # imported when the command runs: `joulecast --help` stays light
    from joulecast.api.graphs import check_input_file
    from joulecast.weightless import strip_weights_file

    return strip_weights_file(check_input_file(args.model)), str(args.model)


# -- the answer -----------------------------------------------------------------------------


def listening(address: str, timeout_s: float) -> bool:
    """True when something accepts a TCP connection at ``address`` (HOST:PORT)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def open_answerer(args: argparse.Namespace, client: Any) -> tuple[Any, str | None]:
    """Who answers (a remote client from ``client(address)``, or the in-process one) and the
    line to print on stderr when this process answers for want of a server."""
    local = args.local or args.artifacts is not None
    if local and args.server is not None:
        raise InvalidArgument(
            "--local and --artifacts answer in this process, --server asks a server: not both"
        )
    if local:
        # imported when the command runs: `joulecast --help` stays light
        from joulecast.api.local import InProcessClient

        return InProcessClient(args.artifacts), None
    if args.server is not None:
        return client(args.server), None
    if listening(DEFAULT_SERVER, PROBE_TIMEOUT_S):
        remote = client(DEFAULT_SERVER)
        if remote.ready(PROBE_TIMEOUT_S):
            return remote, None
        remote.close()
    # imported when the command runs: `joulecast --help` stays light
    from joulecast.api.local import InProcessClient

    answerer = InProcessClient()
    note = (
        f"joulecast: no server answered at {DEFAULT_SERVER}; answering in this process from "
        f"{answerer.artifacts_dir}"
    )
    return answerer, note


@contextlib.contextmanager
def start_hint() -> Iterator[None]:
    """A server that cannot be reached: the error says how to start one."""
    try:
        yield
    except JoulecastError as exc:
        if getattr(exc, "code", None) != "UNAVAILABLE":
            raise
        # imported when the command runs: `joulecast --help` stays light
        from client.remote import RemoteError

        raise RemoteError(f"{exc}; {START_HINT}", "UNAVAILABLE") from None


# -- the commands ----------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    graph, model = model_graph(args)
    answerer, note = open_answerer(args, lambda address: open_client(args, address))
    if note:
        print(note, file=sys.stderr)
    if args.batch_sizes or args.power_limits:
        return _predict_sweep(args, graph, answerer)
    with answerer as client, start_hint():
        result = client.predict(
            graph,
            batch_size=args.batch_size,
            power_limit_w=args.power_limit_w,
            **_run_options(args),
        )
    if args.json:
        print(json.dumps({**result.as_dict(), "uploaded_bytes": len(graph)}, indent=2))
    else:
        print(format_prediction(result, model, uploaded_bytes=len(graph)))
    return 0


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """What every answer of one ``predict`` asks alike (a sweep varies the batch size and the
    power limit)."""
    return {
        "samples": args.samples,
        "epochs": args.epochs,
        "hardware": args.hardware,
        "observed_gpu_util": args.observed_gpu_util,
        "stream": True if args.stream else None,
        "region": args.region,
        "price_per_kwh": args.price_per_kwh,
        "precision": args.precision,
    }


def _predict_sweep(args: argparse.Namespace, graph: bytes, answerer: Any) -> int:
    """One answer per batch size (and power limit), the energy-cheapest marked."""
    # imported when the command runs: `joulecast --help` stays light
    from functools import partial

    from client.sweep import format_sweep, parse_list, sweep

    batches = parse_list(args.batch_sizes, int, "--batch-sizes") or [args.batch_size]
    limits = parse_list(args.power_limits, float, "--power-limits")
    if not limits and args.power_limit_w is not None:
        limits = [args.power_limit_w]
    with answerer as client, start_hint():
        predict = partial(client.predict, graph, **_run_options(args))
        rows = sweep(predict, batches, limits)
    if args.json:
        # imported when the command runs: `joulecast --help` stays light
        from client.sweep import cheapest, same_as_cheapest

        best = cheapest(rows)
        print(
            json.dumps(
                {
                    "hardware": rows[0].reply.hardware,
                    "tier": rows[0].reply.tier,
                    "energy_source": rows[0].reply.energy_source,
                    "energy_is_estimate": any(r.reply.energy_is_estimate for r in rows),
                    "rows": [r.as_dict() for r in rows],
                    "cheapest": None
                    if best is None
                    else {
                        "batch_size": best.batch_size,
                        "power_limit_w": best.reply.power_limit_w,
                        # other limits that cost the same: the board draws less than each
                        "same_energy_at_power_limits_w": same_as_cheapest(rows, best),
                    },
                },
                indent=2,
            )
        )
    else:
        print(format_sweep(rows))
    return 0
