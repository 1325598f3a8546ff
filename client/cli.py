"""``joulecast add-measurements | retrain | delete-measurements | list-predictors``: the
commands that ask a running server to change or show its state.

``register(subparsers)`` adds them to the ``joulecast`` parser; :func:`add_client_args` and
:func:`open_client` are the flags and the client that ``joulecast predict`` shares with them.
gRPC is imported when a command runs, so that ``joulecast --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.results import MeasurementsReply, RetrainReply
from rpc import DEFAULT_SERVER
from rpc.auth import read_token
from rpc.records import RowVerdict

if TYPE_CHECKING:
    from client.remote import EstimatorClient

ROWS_PER_CALL = 5000
BYTES_PER_CALL = 32 * 1024 * 1024
"""Half the server's default byte budget of one AddMeasurements call."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "add-measurements", help="send a measurement store's rows to a server"
    )
    p.add_argument("store", type=Path, help="measurement store (.db) to send")
    add_client_args(p, token=True)
    p.add_argument("--include-failed", action="store_true", help="also send failed runs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_add_measurements)

    p = subparsers.add_parser("retrain", help="refit a server's predictors of one hardware")
    p.add_argument("--hardware", required=True)
    p.add_argument(
        "--allow-idle-meter",
        action="store_true",
        help="fit GPU rows whose power never left an idle board's (refused by default)",
    )
    add_client_args(p, token=True)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_retrain)

    p = subparsers.add_parser(
        "delete-measurements", help="remove rows from a server's store by run key"
    )
    p.add_argument("run_keys", nargs="+", help="run keys of the rows to delete")
    add_client_args(p, token=True)
    p.add_argument("--retrain", metavar="HARDWARE", help="then retrain this hardware")
    p.set_defaults(func=cmd_delete_measurements)

    p = subparsers.add_parser(
        "list-predictors", help="list the predictors a running server answers with"
    )
    add_client_args(p)
    p.set_defaults(func=cmd_predictors)


def add_client_args(
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
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        help=f"seconds per call (default {DEFAULT_TIMEOUT_S:g}; a retrain waits for its fit "
        "unless given)",
    )
    if token:
        p.add_argument("--token-file", type=Path, help="token file (else $JOULECAST_TOKEN)")


DEFAULT_TIMEOUT_S = 120.0
SHOWN_REJECTIONS = 20
"""Rejected rows listed one per line; the rest are counted (``--json`` lists every one)."""


def positive_seconds(text: str) -> float:
    """A ``--timeout``: a finite number of seconds above 0 (0 or less would fail every call
    at once and read as an unreachable server)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def open_client(args: argparse.Namespace, address: str | None = None) -> EstimatorClient:
    """A client of ``address`` (else ``--server``) with the command's TLS, timeout and token."""
    # imported when the command runs: `joulecast --help` stays light
    from client.remote import EstimatorClient, read_root_cert

    token = read_token(args.token_file) if hasattr(args, "token_file") else None
    return EstimatorClient(
        address or args.server,
        token=token,
        root_cert=read_root_cert(args.tls_ca),
        timeout_s=args.timeout or DEFAULT_TIMEOUT_S,
    )


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
    # imported when the command runs: `joulecast --help` stays light
    from joulecast.store import MeasurementStore, check_store_file

    check_store_file(args.store)
    with MeasurementStore(args.store, read_only=True) as store:
        rows = store.rows(status=None if args.include_failed else "ok")
        graphs = {
            sha: store.get_graph(sha) for sha in {r.graph_sha256 for r in rows if r.graph_sha256}
        }
    accepted = rejected = 0
    results: list[RowVerdict] = []
    with open_client(args) as client:
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
        refused = [item for item in results if not item.accepted and not item.already_stored]
        for item in refused[:SHOWN_REJECTIONS]:
            print(f"  rejected {item.run_key}: {item.reason}")
        if len(refused) > SHOWN_REJECTIONS:
            print(f"  ... and {len(refused) - SHOWN_REJECTIONS} more (--json lists every one)")
        if rejected > len(refused):
            print(
                f"  {rejected - len(refused)} rows were already stored on the server (sent "
                "before): nothing to do for them"
            )
    # a store sent again after a partial failure has done its work once every row is there
    return 0 if all(item.accepted or item.already_stored for item in results) else 1


def _retrained(result: RetrainReply) -> str:
    if not result.version:  # retired: its version rested on deleted rows
        return f"{result.hardware}: {result.selected}"
    line = f"{result.hardware}: version {result.version} now serves ({result.selected})"
    if result.energy_is_estimate:
        line += (
            f"\nenergy is ESTIMATED ({result.energy_source}): the rows it was fitted on are "
            "estimates, not a meter's readings"
        )
    return line


def cmd_retrain(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        result = client.retrain(
            args.hardware, timeout_s=args.timeout, allow_idle_meter=args.allow_idle_meter
        )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(_retrained(result))
        if result.version:
            print(json.dumps(result.scores, indent=2))
    return 0


def cmd_delete_measurements(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        result = client.delete_measurements(args.run_keys)
        print(f"{result.deleted} rows deleted")
        for key in result.missing:
            print(f"  not stored: {key}")
        if args.retrain:
            print(_retrained(client.retrain(args.retrain, timeout_s=args.timeout)))
    return 0 if not result.missing else 1


def cmd_predictors(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        print(json.dumps(client.list_predictors().as_dict(), indent=2))
    return 0
