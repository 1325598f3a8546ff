"""``joulecast profile MODEL.onnx [--json]``: print a graph's profile.

The file is read through :func:`joulecast.weightless.strip_weights_file`, so a model saved with
external data is profiled without its data files ever being opened.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from joulecast.errors import JoulecastError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``profile`` sub-command; its handler is ``args.func(args) -> exit code``."""
    parser = subparsers.add_parser(
        "profile",
        help="profile an ONNX graph (FLOPs in DeepSpeed's convention, params, family)",
        description="Profile an ONNX graph: per-sample forward and training FLOPs in DeepSpeed's "
        "convention, parameters, family. Weights and external data files are never read.",
    )
    parser.add_argument("model", help="ONNX file (full, weightless, or saved with external data)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the profile of ``args.model``; 0 on success, 2 (one ``error:`` line) on bad input."""
    from joulecast.graph import profile_graph  # onnx: only when profiling
    from joulecast.weightless import strip_weights_file

    try:
        profile = profile_graph(strip_weights_file(args.model))
    except JoulecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(profile.to_dict(), indent=2))
    else:
        print(format_table(profile.to_dict()))
    return 0


def format_table(d: dict) -> str:
    """A readable two-column table of a profile's dict."""
    rows = [
        ("family", f"{d['family']} ({d['family_reason']})"),
        ("params", f"{d['params']:,}"),
        ("flops_forward", f"{d['flops_forward']:,} per sample"),
        ("flops_train", f"{d['flops_train']:,} per sample"),
    ]
    rows += [(f"  {k}", f"{v:,}") for k, v in d["flops_by_kind"].items()]
    rows += [
        ("weight_bytes", f"{d['weight_bytes']:,}"),
        ("activation_bytes", f"{d['activation_bytes']:,} per sample"),
        ("arithmetic_intensity", f"{d['arithmetic_intensity']:.3f} FLOP/byte"),
        ("recurrent_steps", str(d["recurrent_steps"])),
        ("depth", str(d["depth"])),
        ("node_count", str(d["node_count"])),
    ]
    rows += [("warning", w) for w in d["warnings"]]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
