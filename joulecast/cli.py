"""The `joulecast` command: each package registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from joulecast.errors import JoulecastError

# Modules that define ``register(subparsers)``; imported lazily so `--help` stays fast.
_COMMAND_MODULES = (
    "collector.cli",
    "collector.import_cli",
    "estimator.profile_cli",
    "estimator.fit_cli",
    "estimator.transfer.cli",
    "joulecast.calibrate_cli",
    "estimator.report.cli",
    "estimator.hardware_cli",
    "server.cli",
    "joulecast.regions_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="joulecast",
        description="Predict the energy of training and testing a neural network.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
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
