"""``joulecast regions``: the region codes ``predict --region`` accepts, with their intensity."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "regions",
        help="list the region codes of --region (CodeCarbon's energy-mix data, offline)",
        description="ISO 3166-1 alpha-3 codes with their grid carbon intensity (gCO2eq/kWh) and "
        "the year of the mix, as bundled with CodeCarbon.",
    )
    p.add_argument("search", nargs="?", help="only codes or names containing this text")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `joulecast --help` stays light
    from joulecast.carbon import load_intensities

    grids = sorted(load_intensities().values(), key=lambda g: g.region)
    if args.search:
        needle = args.search.casefold()
        grids = [
            g for g in grids if needle in g.region.casefold() or needle in g.region_name.casefold()
        ]
    if args.json:
        print(json.dumps([asdict(g) for g in grids], indent=1))
        return 0
    for g in grids:
        print(f"{g.region}  {g.co2_g_per_kwh:8.1f} gCO2eq/kWh  {g.year}  {g.region_name}")
    if grids:
        print(f"({len(grids)} regions; source: {grids[0].source})")
    return 0
