"""``joulecast serve | predict | add-measurements | retrain | predictors``.

``register(subparsers)`` adds the commands to the ``joulecast`` parser; ``python -m
server.cli`` runs them alone. gRPC and the estimator are imported inside the commands so that
``joulecast --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from pathlib import Path
from typing import Any

from joulecast.errors import InvalidArgument
from server.settings import DEFAULT_ARTIFACTS, ServerSettings, read_token

logger = logging.getLogger(__name__)

DEFAULT_SERVER = "localhost:50051"
J_PER_KWH = 3.6e6
ROWS_PER_CALL = 5000


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the gRPC prediction server")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=50051, help="port; 0 picks a free one (printed)")
    p.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS, help="predictor artifacts")
    p.add_argument("--db", type=Path, help="measurement store that AddMeasurements/Retrain use")
    p.add_argument(
        "--token-file", type=Path, help="token for state-changing calls (else $JOULECAST_TOKEN)"
    )
    p.add_argument("--tls-cert", type=Path, help="PEM certificate chain (with --tls-key)")
    p.add_argument("--tls-key", type=Path, help="PEM private key (with --tls-cert)")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("predict", help="predict train and test energy of an ONNX model")
    p.add_argument("model", type=Path, help="ONNX file (weights are stripped before upload)")
    _client_args(p)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--samples", type=int, default=1578, help="samples per epoch / test pass")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hardware", help="hardware to predict for (default: the server's)")
    p.add_argument("--observed-gpu-util", type=float, help="observed mean GPU utilisation, %%")
    p.add_argument("--stream", action="store_true", help="always use the streaming upload")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser(
        "add-measurements", help="send a measurement store's rows to a server"
    )
    p.add_argument("store", type=Path, help="measurement store (.db) to send")
    _client_args(p, token=True)
    p.add_argument("--include-failed", action="store_true", help="also send failed runs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_add_measurements)

    p = subparsers.add_parser("retrain", help="refit a server's predictors of one hardware")
    p.add_argument("--hardware", required=True)
    _client_args(p, token=True)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_retrain)

    p = subparsers.add_parser(
        "list-predictors", help="list the predictors a running server answers with"
    )
    _client_args(p)
    p.set_defaults(func=cmd_predictors)


def _client_args(p: argparse.ArgumentParser, token: bool = False) -> None:
    p.add_argument("--server", default=DEFAULT_SERVER, help=f"HOST:PORT (default {DEFAULT_SERVER})")
    p.add_argument("--tls-ca", type=Path, help="PEM root certificate: connect with TLS")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per call")
    if token:
        p.add_argument("--token-file", type=Path, help="token file (else $JOULECAST_TOKEN)")


def _client(args: argparse.Namespace) -> Any:
    from server.client import EstimatorClient, read_root_cert

    token = read_token(args.token_file) if hasattr(args, "token_file") else None
    return EstimatorClient(
        args.server, token=token, root_cert=read_root_cert(args.tls_ca), timeout_s=args.timeout
    )


# -- serve ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from server.app import serve

    settings = ServerSettings(
        artifacts_dir=args.artifacts,
        db_path=args.db,
        host=args.host,
        port=args.port,
        token=read_token(args.token_file),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    running, port = serve(settings)

    def stop(signum: int, _frame: object) -> None:
        logger.warning("signal %d: stopping", signum)
        running.shutdown()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on {settings.host}:{port}", flush=True)
    running.wait()
    return 0


# -- predict -------------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    from joulecast.weightless import strip_weights_file

    graph = strip_weights_file(args.model)
    with _client(args) as client:
        result = client.predict(
            graph,
            batch_size=args.batch_size,
            samples=args.samples,
            epochs=args.epochs,
            hardware=args.hardware,
            observed_gpu_util=args.observed_gpu_util,
            stream=True if args.stream else None,
        )
    result["uploaded_bytes"] = len(graph)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_prediction(result, args.model))
    return 0


def _fmt_j(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def _fmt_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_prediction(result: dict[str, Any], model: Path | str) -> str:
    """The human-readable table of one prediction."""
    lines = [
        f"model         {model}  ({result.get('uploaded_bytes', 0):,} bytes uploaded)",
        f"family        {result['family']}  ({result.get('family_reason', '')})",
        f"params        {result['params']:,}",
        f"FLOPs/sample  forward {result['flops_forward']:.3e}   train {result['flops_train']:.3e}",
        f"hardware      {result['hardware']}   predictor version {result['predictor_version']}",
        f"energy source {result['energy_source']}",
    ]
    if result.get("energy_is_estimate"):
        lines.append(
            "ESTIMATED     the predictor learned from estimated energy (no power meter), "
            "not from measurements"
        )
    header = f"{'phase':<6} {'energy (J)':>14} {'energy (kWh)':>14} {'interval (J)':>28} {'duration (s)':>13}  predictor"
    lines += ["", header, "-" * len(header)]
    for phase in ("train", "test"):
        est = result[phase]
        if est is None:
            lines.append(f"{phase:<6} {'unavailable: no predictor covers this phase':>14}")
            continue
        interval = f"[{_fmt_j(est['energy_low_j'])}, {_fmt_j(est['energy_high_j'])}]"
        lines.append(
            f"{phase:<6} {_fmt_j(est['energy_j']):>14} {est['energy_j'] / J_PER_KWH:>14.3e} "
            f"{interval:>28} {_fmt_s(est['duration_s']):>13}  {est.get('predictor', '')}"
        )
    if result["warnings"]:
        lines += ["", "warnings:"] + [f"  - {w}" for w in result["warnings"]]
    return "\n".join(lines)


# -- add-measurements, retrain, predictors -------------------------------------------------


def cmd_add_measurements(args: argparse.Namespace) -> int:
    from joulecast.store import MeasurementStore

    if not args.store.is_file():
        raise InvalidArgument(f"no such measurement store: {args.store}")
    with MeasurementStore(args.store) as store:
        rows = store.rows(status=None if args.include_failed else "ok")
        graphs = {
            sha: store.get_graph(sha) for sha in {r.graph_sha256 for r in rows if r.graph_sha256}
        }
    totals: dict[str, Any] = {"accepted": 0, "rejected": 0, "results": []}
    with _client(args) as client:
        for start in range(0, len(rows), ROWS_PER_CALL):
            batch = rows[start : start + ROWS_PER_CALL]
            reply = client.add_measurements(
                (r, graphs.get(r.graph_sha256) if r.graph_sha256 else None) for r in batch
            )
            totals["accepted"] += reply["accepted"]
            totals["rejected"] += reply["rejected"]
            for item in reply["results"]:
                item["index"] += start
                totals["results"].append(item)
    if args.json:
        print(json.dumps(totals, indent=2))
    else:
        print(f"{totals['accepted']} rows accepted, {totals['rejected']} rejected (of {len(rows)})")
        for item in totals["results"]:
            if not item["accepted"]:
                print(f"  rejected {item['run_key']}: {item['reason']}")
    return 0 if totals["rejected"] == 0 else 1


def cmd_retrain(args: argparse.Namespace) -> int:
    with _client(args) as client:
        result = client.retrain(args.hardware, timeout_s=None)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['hardware']}: version {result['version']} now serves ({result['selected']})"
        )
        print(json.dumps(result["scores"], indent=2))
    return 0


def cmd_predictors(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(json.dumps(client.list_predictors(), indent=2))
    return 0
