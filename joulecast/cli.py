"""The `joulecast` command, the one composition root: each package registers its own
subcommands, and only this module sees them all.

Every ``register`` module imports nothing heavy at the top (their commands import what they
need when they run), so building the parser for ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from client import cli as client_cli
from collector import cli as collect_cli
from collector import import_cli
from estimator import fit_cli, hardware_cli
from estimator.report import cli as report_cli
from estimator.transfer import cli as transfer_cli
from joulecast import calibrate_cli, predict_cli, profile_cli, regions_cli
from joulecast.errors import JoulecastError
from server import cli as serve_cli

_REGISTERS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    collect_cli.register,
    import_cli.register,
    profile_cli.register,
    fit_cli.register,
    transfer_cli.register,
    calibrate_cli.register,
    report_cli.register,
    hardware_cli.register,
    serve_cli.register,
    predict_cli.register,
    client_cli.register,
    regions_cli.register,
)
"""In the order ``joulecast --help`` lists the commands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="joulecast",
        description="Predict the energy of training and testing a neural network.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _REGISTERS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except JoulecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
