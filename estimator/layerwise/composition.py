"""How a whole network's energy relates to the sum of its layers measured alone.

Input: the windows of ``python -m collector.campaign.composition`` (one CSV row per window: a
network, one of its layers run alone on the shape it sees there, or the identity control).
Each item's energy per forward pass is the median over its repeats. Candidate rules, each
predicting a network from its own layers' single-layer energies and parameters fitted on the
*other* networks (leave one network out):

- ``sum``: the plain sum of the layers (no parameter);
- ``sum-minus-loop``: the sum less (layers - 1) x the identity control's energy (a single-layer
  window pays the measuring loop and one module call once per pass; a network pays them once,
  not once per layer; no parameter);
- ``once-fraction``: the sum less ``f`` x the layers' per-call costs (:mod:`calls`); ``f`` = 1
  would mean a network pays each layer's per-call cost once in all, ``f`` = 0 once per layer;
- ``ratio``: ``r`` x the sum;
- ``per-boundary``: the sum plus ``b`` J per boundary between two layers;
- ``one-constant``: ``k`` x the network's multiply-accumulates, ``k`` the median J/MAC of the
  single Conv and Linear layers (the one-constant baseline, no network data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from estimator.layerwise.calls import CallCost, fit_call_cost

WORK_COLUMN = {
    "Conv2d": "macs",
    "Linear": "macs",
    "MaxPool2d": "elements_in",
    "ReLU": "elements_in",
}
"""What a layer's work is counted in, per torch module type (no work: its median is its cost)."""
RULES = ("sum", "sum-minus-loop", "once-fraction", "ratio", "per-boundary", "one-constant")


@dataclass(frozen=True)
class Network:
    """One network's measured energy per forward pass and what its layers say (J)."""

    name: str
    measured_j: float
    layer_sum_j: float
    layers: int
    per_call_sum_j: float
    identity_j: float
    macs: int
    repeat_cv: float


@dataclass(frozen=True)
class RuleScore:
    """A rule's leave-one-network-out answers: median absolute percentage error, median
    predicted/measured, the parameter fitted on all networks (nan where it has none)."""

    rule: str
    median_ape_pct: float
    median_pred_over_meas: float
    max_ape_pct: float
    parameter: float
    predicted_j: dict[str, float]


def item_medians(windows: pd.DataFrame) -> pd.DataFrame:
    """Median energy per pass (J) per (network, kind, item), with repeats and CV."""
    keys = ["network", "kind", "item", "op", "macs", "elements_in", "batch_size"]
    grouped = windows.groupby(keys, as_index=False)["energy_per_pass_j"]
    out = grouped.median()
    out["repeats"] = grouped.count()["energy_per_pass_j"]
    spread = grouped.agg(lambda v: float(np.std(v, ddof=1) / np.mean(v)) if len(v) > 1 else 0.0)
    out["cv"] = spread["energy_per_pass_j"]
    return out


def call_costs(items: pd.DataFrame) -> dict[str, CallCost]:
    """Per-call cost of every layer type of the experiment (its single-layer medians)."""
    layers = items[items["kind"] == "layer"]
    out: dict[str, CallCost] = {}
    for op, part in layers.groupby("op"):
        column = WORK_COLUMN.get(str(op))
        work = part[column].to_numpy(float) if column else np.zeros(len(part))
        out[str(op)] = fit_call_cost(str(op), work, part["energy_per_pass_j"].to_numpy(float))
    return out


def networks(items: pd.DataFrame, costs: dict[str, CallCost]) -> list[Network]:
    """Every network with its measured energy and its layers' sum, per-call sum, identity."""
    out: list[Network] = []
    for name, part in items.groupby("network"):
        whole = part[part["kind"] == "network"]
        layers = part[part["kind"] == "layer"]
        control = part[part["kind"] == "control"]
        if whole.empty or layers.empty:
            continue
        per_call = sum(costs[op].per_call_j for op in layers["op"] if op in costs)
        out.append(
            Network(
                name=str(name),
                measured_j=float(whole["energy_per_pass_j"].iloc[0]),
                layer_sum_j=float(layers["energy_per_pass_j"].sum()),
                layers=len(layers),
                per_call_sum_j=float(per_call),
                identity_j=float(control["energy_per_pass_j"].iloc[0]) if len(control) else 0.0,
                macs=int(whole["macs"].iloc[0]),
                repeat_cv=float(whole["cv"].iloc[0]),
            )
        )
    return out


def _relative_slope(x: np.ndarray, y: np.ndarray, measured: np.ndarray) -> float:
    """Least squares of ``y ~ p x`` on errors relative to ``measured``."""
    xs, ys = x / measured, y / measured
    denominator = float(np.dot(xs, xs))
    return float(np.dot(xs, ys) / denominator) if denominator > 0 else 0.0


def _fit(rule: str, train: list[Network], j_per_mac: float) -> float:
    if rule == "one-constant":
        return j_per_mac
    if not train:
        return float("nan")
    measured = np.array([n.measured_j for n in train])
    total = np.array([n.layer_sum_j for n in train])
    if rule == "once-fraction":
        calls = np.array([n.per_call_sum_j for n in train])
        return -_relative_slope(calls, measured - total, measured)
    if rule == "ratio":
        return float(np.median(measured / total))
    if rule == "per-boundary":
        bounds = np.array([n.layers - 1 for n in train], float)
        return _relative_slope(bounds, measured - total, measured)
    return float("nan")


def _predict(rule: str, network: Network, p: float) -> float:
    if rule == "sum":
        return network.layer_sum_j
    if rule == "sum-minus-loop":
        return network.layer_sum_j - (network.layers - 1) * network.identity_j
    if rule == "once-fraction":
        return network.layer_sum_j - p * network.per_call_sum_j
    if rule == "ratio":
        return p * network.layer_sum_j
    if rule == "per-boundary":
        return network.layer_sum_j + p * (network.layers - 1)
    if rule == "one-constant":
        return p * network.macs
    raise ValueError(f"unknown rule {rule!r}")


def j_per_mac(items: pd.DataFrame) -> float:
    """Median J per multiply-accumulate of the single Conv and Linear layers."""
    dense = items[(items["kind"] == "layer") & items["op"].isin(("Conv2d", "Linear"))]
    return float((dense["energy_per_pass_j"] / dense["macs"]).median())


def score_rules(
    nets: list[Network], k_j_per_mac: float, rules: tuple[str, ...] = RULES
) -> list[RuleScore]:
    """Leave-one-network-out scores of each rule."""
    scores: list[RuleScore] = []
    for rule in rules:
        predicted: dict[str, float] = {}
        for held in nets:
            p = _fit(rule, [n for n in nets if n.name != held.name], k_j_per_mac)
            predicted[held.name] = _predict(rule, held, p)
        measured = np.array([n.measured_j for n in nets])
        pred = np.array([predicted[n.name] for n in nets])
        ape = np.abs(pred - measured) / measured * 100
        scores.append(
            RuleScore(
                rule=rule,
                median_ape_pct=float(np.median(ape)),
                median_pred_over_meas=float(np.median(pred / measured)),
                max_ape_pct=float(ape.max()),
                parameter=_fit(rule, nets, k_j_per_mac),
                predicted_j=predicted,
            )
        )
    return scores


def best_rule(scores: list[RuleScore]) -> RuleScore:
    """The rule with the lowest leave-one-network-out median APE."""
    return min(scores, key=lambda s: s.median_ape_pct)


def analyse(windows: pd.DataFrame) -> tuple[list[Network], dict[str, CallCost], list[RuleScore]]:
    """Networks, per-call costs and rule scores of a composition CSV's windows."""
    items = item_medians(windows)
    costs = call_costs(items)
    nets = networks(items, costs)
    return nets, costs, score_rules(nets, j_per_mac(items))
