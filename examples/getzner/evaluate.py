"""Per-layer-type cross-validated scores of joulecast's predictors on the Getzner store.

Leave-configurations-out by ``config_id`` (the three repeats of a configuration always leave
together). Full leave-one-configuration-out refits every predictor 3,000 times; ``--folds K``
holds out K disjoint groups of configurations instead (K=10: each fit sees 90 % of the
configurations, a slightly harder test than LOCO). Metrics per layer type on the held-out
predictions: R² of log energy, R² of energy per sample and per forward pass (linear space),
MAPE and median APE.

Usage::

    python examples/getzner/evaluate.py artifacts/measurements/rtx2080ti.db --folds 10
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from estimator.dataset import from_store
from estimator.predictors import PREDICTORS

LAYER_OF_FAMILY = {"mlp": "Linear", "cnn": "Conv2d", "other": "MaxPool2d"}


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / total if total > 0 else float("nan")


def scores(y: np.ndarray, pred: np.ndarray, batch: np.ndarray) -> dict[str, float]:
    ape = np.abs(pred - y) / y * 100.0
    return {
        "n": len(y),
        "r2_log": r2(np.log(y), np.log(np.maximum(pred, 1e-30))),
        "r2_linear_per_sample": r2(y, pred),
        "r2_linear_per_forward_pass": r2(y * batch, pred * batch),
        "mape_pct": float(ape.mean()),
        "median_ape_pct": float(np.median(ape)),
    }


def held_out(name: str, frame, y: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    configs = np.array(sorted(frame["config_id"].unique()))
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(configs, rng.permutation(len(configs)) % folds, strict=True))
    fold = frame["config_id"].map(fold_of).to_numpy()
    pred = np.full(len(frame), np.nan)
    for k in range(folds):
        test = fold == k
        model = PREDICTORS[name]().fit(frame[~test], y[~test])
        pred[test] = model.predict(frame[test])
    return pred


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--hardware", default="rtx2080ti")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--predictors", nargs="*", default=list(PREDICTORS))
    parser.add_argument("--out", type=Path, help="write the scores as JSON here")
    args = parser.parse_args(argv)
    frame = from_store(args.db, args.hardware).frame
    y = frame["energy_per_sample_j"].to_numpy(float)
    batch = frame["batch_size"].to_numpy(float)
    family = frame["family"].to_numpy()
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.predictors:
        pred = held_out(name, frame, y, args.folds)
        result[name] = {"all": scores(y, pred, batch)}
        for fam, layer in LAYER_OF_FAMILY.items():
            m = family == fam
            if m.any():
                result[name][layer] = scores(y[m], pred[m], batch[m])
        for layer, s in result[name].items():
            print(
                f"{name:22s} {layer:9s} n={s['n']:5d} R2log={s['r2_log']:.3f} "
                f"R2lin={s['r2_linear_per_sample']:.3f} R2lin/fp={s['r2_linear_per_forward_pass']:.3f} "
                f"MAPE={s['mape_pct']:.1f}% medAPE={s['median_ape_pct']:.1f}%",
                flush=True,
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"folds": args.folds, "scores": result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
