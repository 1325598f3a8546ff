"""Fit and publish the ``rtx2080ti`` predictor from the imported Getzner store.

``estimator.service.fit_and_publish`` scores with leave-one-configuration-out, which refits
every predictor once per configuration: 3,000 times here (about half an hour of one CPU core).
Until the estimator offers grouped K-fold, this script fits the same bundle with the
configurations dealt into ``--folds`` groups of whole configurations (the three repeats of a
configuration always land in the same group): the "loco" scores in the manifest are then
leave-one-fold-out, a stricter test (each fit sees (K-1)/K of the configurations), and a note
in the manifest says so. With ``--folds 0`` it calls ``fit_and_publish`` unchanged.

Usage::

    python examples/getzner/publish.py artifacts/measurements/rtx2080ti.db --artifacts artifacts
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from estimator.artifacts import publish
from estimator.dataset import from_store
from estimator.service import describe_published, fit_and_publish
from estimator.training import fit_bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--hardware", default="rtx2080ti")
    parser.add_argument("--folds", type=int, default=10)
    args = parser.parse_args(argv)
    if args.folds <= 0:
        described = fit_and_publish(args.db, args.hardware, args.artifacts)
    else:
        dataset = from_store(args.db, args.hardware)
        frame = dataset.frame
        configs = np.array(sorted(frame["config_id"].unique()))
        order = np.random.default_rng(0).permutation(len(configs))
        fold_of = {c: f"fold-{k % args.folds:02d}" for c, k in zip(configs, order, strict=True)}
        grouped = frame.assign(config_id=frame["config_id"].map(fold_of))
        note = (
            f"CV groups: the {len(configs)} configurations (x3 repeats) dealt into "
            f"{args.folds} folds of whole configurations; 'loco' scores are leave-one-fold-out"
        )
        dataset = replace(dataset, frame=grouped, warnings=(*dataset.warnings, note))
        described = describe_published(publish(fit_bundle(dataset), args.artifacts))
    print(json.dumps(described, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
