"""``joulecast serve | predict | add-measurements | retrain | predictors``.

``register(subparsers)`` adds the commands to the ``joulecast`` parser; ``python -m
server.cli`` runs them alone. gRPC and the estimator are imported inside the commands so that
``joulecast --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from joulecast.carbon import J_PER_KWH
from joulecast.errors import InvalidArgument
from server.cli_predict import DEFAULT_SERVER, add_local_args
from server.client_results import MeasurementsReply, PredictionReply, RetrainReply
from server.measurements import RowVerdict
from server.settings import DEFAULT_ARTIFACTS, ServerSettings, read_token

logger = logging.getLogger(__name__)

ROWS_PER_CALL = 5000
BYTES_PER_CALL = 32 * 1024 * 1024
"""Half the server's default byte budget of one AddMeasurements call."""


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
    p.add_argument(
        "--profile-workers",
        type=int,
        help="profiling processes (default: one per core plus one, >= 2)",
    )
    p.add_argument(
        "--profile-deadline-s", type=float, default=4.0, help="longest one profile may take"
    )
    p.add_argument(
        "--layer-deadline-s",
        type=float,
        default=8.0,
        help="longest one layer-sum job (a graph's per-node records and their prediction) may take",
    )
    p.add_argument(
        "--stream-idle-s", type=float, default=10.0, help="longest wait for a stream's next message"
    )
    p.add_argument(
        "--stream-min-rate",
        type=float,
        default=256 * 1024,
        metavar="BYTES_PER_S",
        help="bytes a request stream must bring per second of waiting, after 5 s (256 KiB)",
    )
    p.add_argument(
        "--max-call-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="most bytes (row text and graphs) one AddMeasurements call may send (64 MiB)",
    )
    p.add_argument(
        "--max-row-field-bytes",
        type=int,
        default=16 * 1024,
        help="longest text field of a row sent to AddMeasurements, UTF-8 bytes (16 KiB)",
    )
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser(
        "predict", help="predict train and test energy of an ONNX model or a torch module"
    )
    p.add_argument(
        "model", type=Path, nargs="?", help="ONNX file (weights are stripped before upload)"
    )
    _client_args(p, auto_server=True)
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
        "--batch-sizes",
        help="comma list (e.g. 8,32,128,512): one answer per batch size, the cheapest marked",
    )
    p.add_argument(
        "--power-limits", help="comma list of GPU power limits in W, swept with --batch-sizes"
    )
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
        "delete-measurements", help="remove rows from a server's store by run key"
    )
    p.add_argument("run_keys", nargs="+", help="run keys of the rows to delete")
    _client_args(p, token=True)
    p.add_argument("--retrain", metavar="HARDWARE", help="then retrain this hardware")
    p.set_defaults(func=cmd_delete_measurements)

    p = subparsers.add_parser(
        "list-predictors", help="list the predictors a running server answers with"
    )
    _client_args(p)
    p.set_defaults(func=cmd_predictors)


def _client_args(
    p: argparse.ArgumentParser, token: bool = False, auto_server: bool = False
) -> None:
    if auto_server:  # predict: the default server if one answers, else this process
        p.add_argument(
            "--server",
            help=f"HOST:PORT (default: {DEFAULT_SERVER} when a server answers there, else "
            "this process answers, as with --local)",
        )
    else:
        p.add_argument(
            "--server", default=DEFAULT_SERVER, help=f"HOST:PORT (default {DEFAULT_SERVER})"
        )
    p.add_argument("--tls-ca", type=Path, help="PEM root certificate: connect with TLS")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per call")
    if token:
        p.add_argument("--token-file", type=Path, help="token file (else $JOULECAST_TOKEN)")


def _client(args: argparse.Namespace, address: str | None = None) -> Any:
    from server.client import EstimatorClient, read_root_cert

    token = read_token(args.token_file) if hasattr(args, "token_file") else None
    return EstimatorClient(
        address or args.server,
        token=token,
        root_cert=read_root_cert(args.tls_ca),
        timeout_s=args.timeout,
    )


# -- serve ---------------------------------------------------------------------------------


MAX_MODEL_FILE_BYTES = 4 * 1024**3
"""Largest ONNX file ``joulecast predict`` reads (weights included; they are stripped)."""


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


def check_serve_paths(artifacts: Path, db: Path | None) -> None:
    """Refuse to start with a missing artifacts folder or a ``--db`` that is not a store."""
    if not artifacts.is_dir():
        raise InvalidArgument(f"artifacts folder {artifacts} does not exist")
    if db is not None:
        if db.exists():
            from joulecast.store import check_store_file

            check_store_file(db)
        elif not db.parent.is_dir():
            raise InvalidArgument(f"cannot create {db}: folder {db.parent} does not exist")


def cmd_serve(args: argparse.Namespace) -> int:
    from server.app import serve

    check_serve_paths(args.artifacts, args.db)
    settings = ServerSettings(
        artifacts_dir=args.artifacts,
        db_path=args.db,
        host=args.host,
        port=args.port,
        token=read_token(args.token_file),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        profile_workers=args.profile_workers,
        profile_deadline_s=args.profile_deadline_s,
        layer_deadline_s=args.layer_deadline_s,
        stream_idle_s=args.stream_idle_s,
        max_call_bytes=args.max_call_bytes,
        stream_min_rate_bytes_s=args.stream_min_rate,
        max_row_field_bytes=args.max_row_field_bytes,
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
    from server.cli_predict import model_graph, open_answerer, start_hint

    graph, model = model_graph(args)
    answerer, note = open_answerer(args, lambda address: _client(args, address))
    if note:
        print(note, file=sys.stderr)
    if args.batch_sizes or args.power_limits:
        return _predict_sweep(args, graph, answerer)
    with answerer as client, start_hint():
        result = client.predict(
            graph,
            batch_size=args.batch_size,
            samples=args.samples,
            epochs=args.epochs,
            hardware=args.hardware,
            observed_gpu_util=args.observed_gpu_util,
            stream=True if args.stream else None,
            region=args.region,
            price_per_kwh=args.price_per_kwh,
            power_limit_w=args.power_limit_w,
        )
    if args.json:
        print(json.dumps({**result.as_dict(), "uploaded_bytes": len(graph)}, indent=2))
    else:
        print(format_prediction(result, model, uploaded_bytes=len(graph)))
    return 0


def _predict_sweep(args: argparse.Namespace, graph: bytes, answerer: Any) -> int:
    """One answer per batch size (and power limit), the energy-cheapest marked."""
    from functools import partial

    from server.cli_predict import start_hint
    from server.client_sweep import format_sweep, parse_list, sweep

    batches = parse_list(args.batch_sizes, int, "--batch-sizes") or [args.batch_size]
    limits = parse_list(args.power_limits, float, "--power-limits")
    if not limits and args.power_limit_w is not None:
        limits = [args.power_limit_w]
    with answerer as client, start_hint():
        predict = partial(
            client.predict,
            graph,
            samples=args.samples,
            epochs=args.epochs,
            hardware=args.hardware,
            observed_gpu_util=args.observed_gpu_util,
            stream=True if args.stream else None,
            region=args.region,
            price_per_kwh=args.price_per_kwh,
        )
        rows = sweep(predict, batches, limits)
    if args.json:
        from server.client_sweep import cheapest

        best = cheapest(rows)
        print(
            json.dumps(
                {
                    "hardware": rows[0].reply.hardware,
                    "tier": rows[0].reply.tier,
                    "rows": [r.as_dict() for r in rows],
                    "cheapest": None
                    if best is None
                    else {"batch_size": best.batch_size, "power_limit_w": best.reply.power_limit_w},
                },
                indent=2,
            )
        )
    else:
        print(format_sweep(rows))
    return 0


def _fmt_j(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def _fmt_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _fmt_w(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def format_prediction(
    result: PredictionReply, model: Path | str, *, uploaded_bytes: int = 0
) -> str:
    """The human-readable table of one prediction."""
    lines = [
        f"model         {model}  ({uploaded_bytes:,} bytes uploaded)",
        f"family        {result.family}  ({result.family_reason})",
        f"params        {result.params:,}",
        f"FLOPs/sample  forward {result.flops_forward:.3e}   train {result.flops_train:.3e}",
        f"hardware      {result.hardware}   predictor version {result.predictor_version}"
        f"   ({result.tier}"
        + ("" if result.power_limit_w is None else f", power limit {result.power_limit_w:g} W")
        + ")",
        f"energy source {result.energy_source}",
    ]
    if result.energy_is_estimate:
        lines.append(
            "ESTIMATED     the predictor learned from estimated energy (no power meter), "
            "not from measurements"
        )
    header = f"{'phase':<6} {'energy (J)':>14} {'energy (kWh)':>14} {'interval (J)':>28} {'duration (s)':>13} {'power (W)':>10}  predictor"
    lines += ["", header, "-" * len(header)]
    for phase in ("train", "test"):
        est = result.phase(phase)
        if est is None:
            lines.append(f"{phase:<6} {'unavailable: no predictor covers this phase':>14}")
            continue
        interval = f"[{_fmt_j(est.energy_low_j)}, {_fmt_j(est.energy_high_j)}]"
        lines.append(
            f"{phase:<6} {_fmt_j(est.energy_j):>14} {est.energy_j / J_PER_KWH:>14.3e} "
            f"{interval:>28} {_fmt_s(est.duration_s):>13} {_fmt_w(est.power_w):>10}  "
            f"{est.predictor}"
        )
    lines += _format_footprint(result)
    if result.warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in result.warnings]
    return "\n".join(lines)


def _fmt_g(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def _format_footprint(result: PredictionReply) -> list[str]:
    """Carbon and cost rows, when the prediction carries them (``--region``/``--price-per-kwh``)."""
    grid = result.grid
    price = result.price_per_kwh
    if grid is None and price is None:
        return []
    lines = [""]
    if grid is not None:
        lines.append(
            f"grid          {grid.region} ({grid.region_name}): "
            f"{grid.co2_g_per_kwh:.1f} gCO2eq/kWh, mix of {grid.year} ({grid.source})"
        )
    if price is not None:
        lines.append(f"price         {price:g} per kWh")
    if result.energy_is_estimate:
        lines.append("ESTIMATED     carbon and cost come from estimated energy: estimates too")
    header = f"{'phase':<6} {'kWh':>11} {'gCO2eq':>12} {'interval (gCO2eq)':>26} {'cost':>11} {'interval (cost)':>24}"
    lines += ["", header, "-" * len(header)]
    for phase in ("train", "test"):
        est = result.phase(phase)
        if est is None or est.footprint is None:
            continue
        fp = est.footprint
        co2 = cost = co2_int = cost_int = "-"
        if fp.co2_g is not None:
            co2 = _fmt_g(fp.co2_g)
            co2_int = f"[{_fmt_g(fp.co2_low_g)}, {_fmt_g(fp.co2_high_g)}]"
        if fp.cost is not None:
            cost = f"{fp.cost:.4g}"
            cost_int = f"[{fp.cost_low:.4g}, {fp.cost_high:.4g}]"
        lines.append(
            f"{phase:<6} {fp.energy_kwh:>11.3e} {co2:>12} {co2_int:>26} {cost:>11} {cost_int:>24}"
        )
    return lines


# -- add-measurements, retrain, predictors -------------------------------------------------


def _batches(rows: list, graphs: dict[str, bytes | None]) -> Iterator[tuple[int, list]]:
    """(index of the first row, rows) of each call: at most :data:`ROWS_PER_CALL` rows and
    about :data:`BYTES_PER_CALL` bytes (a graph counted once per call, as it is sent once), so
    that a large store stays inside the server's byte budget per call."""
    start, batch, size, sent = 0, [], 0, set()

    def cost(row: Any) -> int:
        text = sum(len(v) for v in dataclasses.astuple(row) if isinstance(v, str))
        new_graph = row.graph_sha256 and row.graph_sha256 not in sent
        return 256 + text + (len(graphs.get(row.graph_sha256) or b"") if new_graph else 0)

    for n, row in enumerate(rows):
        if batch and (len(batch) >= ROWS_PER_CALL or size + cost(row) > BYTES_PER_CALL):
            yield start, batch
            start, batch, size, sent = n, [], 0, set()
        size += cost(row)
        batch.append(row)
        if row.graph_sha256:
            sent.add(row.graph_sha256)
    if batch:
        yield start, batch


def cmd_add_measurements(args: argparse.Namespace) -> int:
    from joulecast.store import MeasurementStore, check_store_file

    check_store_file(args.store)
    with MeasurementStore(args.store, read_only=True) as store:
        rows = store.rows(status=None if args.include_failed else "ok")
        graphs = {
            sha: store.get_graph(sha) for sha in {r.graph_sha256 for r in rows if r.graph_sha256}
        }
    accepted = rejected = 0
    results: list[RowVerdict] = []
    with _client(args) as client:
        for start, batch in _batches(rows, graphs):
            reply = client.add_measurements(
                (r, graphs.get(r.graph_sha256) if r.graph_sha256 else None) for r in batch
            )
            accepted += reply.accepted
            rejected += reply.rejected
            results += [dataclasses.replace(v, index=v.index + start) for v in reply.results]
    if args.json:
        print(json.dumps(MeasurementsReply(accepted, rejected, tuple(results)).as_dict(), indent=2))
    else:
        print(f"{accepted} rows accepted, {rejected} rejected (of {len(rows)})")
        for item in results:
            if not item.accepted:
                print(f"  rejected {item.run_key}: {item.reason}")
    return 0 if rejected == 0 else 1


def _retrained(result: RetrainReply) -> str:
    if not result.version:  # retired: its version rested on deleted rows
        return f"{result.hardware}: {result.selected}"
    return f"{result.hardware}: version {result.version} now serves ({result.selected})"


def cmd_retrain(args: argparse.Namespace) -> int:
    with _client(args) as client:
        result = client.retrain(args.hardware, timeout_s=None)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(_retrained(result))
        if result.version:
            print(json.dumps(result.scores, indent=2))
    return 0


def cmd_delete_measurements(args: argparse.Namespace) -> int:
    with _client(args) as client:
        result = client.delete_measurements(args.run_keys)
        print(f"{result.deleted} rows deleted")
        for key in result.missing:
            print(f"  not stored: {key}")
        if args.retrain:
            print(_retrained(client.retrain(args.retrain, timeout_s=None)))
    return 0 if not result.missing else 1


def cmd_predictors(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(json.dumps(client.list_predictors().as_dict(), indent=2))
    return 0
