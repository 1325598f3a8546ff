"""``joulecast serve``: the gRPC prediction server.

``register(subparsers)`` adds the command to the ``joulecast`` parser. gRPC and the estimator
are imported inside the command so that ``joulecast --help`` stays fast. The commands that ask
a server live with the client (``client.cli``) and the composition root
(``joulecast.predict_cli``).
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path

from joulecast.errors import InvalidArgument
from rpc import DEFAULT_PORT
from rpc.auth import read_token
from server.settings import DEFAULT_ARTIFACTS, ServerSettings

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="run the gRPC prediction server")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port; 0 picks a free one (printed)"
    )
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
        "--max-streams-per-host",
        type=int,
        default=None,
        help="request streams of one kind one client host may hold at once (default: one less "
        "than the server's 4; behind a proxy every client is one host: give 4)",
    )
    p.add_argument(
        "--max-calls-per-host",
        type=int,
        default=None,
        help="calls of any kind one client host may have in progress at once (default: three "
        "quarters of the server's calls; behind a proxy every client is one host: give all)",
    )
    p.add_argument(
        "--retrain-deadline-s",
        type=float,
        default=1800.0,
        help="longest one Retrain's fit may take; its process is then killed (default 1800)",
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


def check_serve_paths(artifacts: Path, db: Path | None) -> None:
    """Refuse to start with a missing artifacts folder or a ``--db`` that is not a store."""
    if not artifacts.is_dir():
        raise InvalidArgument(f"artifacts folder {artifacts} does not exist")
    if db is not None:
        if db.exists():
            # imported when the command runs: `joulecast --help` stays light
            from joulecast.store import check_store_file

            check_store_file(db)
        elif not db.parent.is_dir():
            raise InvalidArgument(f"cannot create {db}: folder {db.parent} does not exist")


def cmd_serve(args: argparse.Namespace) -> int:
    # imported when the command runs: `joulecast --help` stays light
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
        retrain_deadline_s=args.retrain_deadline_s,
        max_streams_per_host=args.max_streams_per_host,
        max_calls_per_host=args.max_calls_per_host,
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
