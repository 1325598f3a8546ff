"""The composition fit on a table that obeys a known law: per-call costs and the once-fraction
are recovered, and the rules are scored leave one network out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from estimator.layerwise.calls import fit_call_cost
from estimator.layerwise.composition import analyse, best_rule

PER_CALL_J = {"Conv2d": 46e-6, "Linear": 21e-6, "MaxPool2d": 14e-6, "ReLU": 7e-6}
"""Per-call costs of the law (J): about 11.5, 5.2, 3.4 and 1.7 µs at 4 W per core."""
J_PER_WORK = {"Conv2d": 2e-10, "Linear": 1.5e-10, "MaxPool2d": 3e-10, "ReLU": 1e-10}
LOOP_J = 2e-6


def _windows(once_fraction: float, rng: np.random.Generator) -> pd.DataFrame:
    """Windows of 12 networks of 8-14 layers each: layer energy = per-call + J/work x work
    (2 % noise); a network pays its layers less ``once_fraction`` of their per-call costs."""
    rows: list[dict[str, object]] = []
    for n in range(12):
        name = f"net{n}"
        layers = []
        for position in range(int(rng.integers(8, 15))):
            op = ("Conv2d", "ReLU", "MaxPool2d", "Linear")[position % 4]
            work = int(10 ** rng.uniform(3, 7))
            energy = PER_CALL_J[op] + J_PER_WORK[op] * work + LOOP_J
            layers.append((f"L{position:02d}", op, work, energy))
        whole = sum(e for *_, e in layers) - once_fraction * sum(
            PER_CALL_J[o] for _, o, *_ in layers
        )
        items = [
            ("network", name, "Sequential", 0, 0, whole),
            ("control", "Identity", "Identity", 0, 0, LOOP_J),
        ]
        items += [("layer", key, op, work, work, e) for key, op, work, e in layers]
        for round_no in range(3):
            for kind, item, op, macs, elements, energy in items:
                noisy = energy * (1 + 0.02 * rng.standard_normal())
                rows.append(
                    {"round": round_no, "network": name, "kind": kind, "item": item, "op": op,
                     "macs": macs if op in ("Conv2d", "Linear", "Sequential") else 0,
                     "elements_in": elements, "batch_size": 1, "energy_per_pass_j": noisy}
                )  # fmt: skip
    return pd.DataFrame(rows)


def test_per_call_cost_of_a_line_is_its_intercept() -> None:
    rng = np.random.default_rng(1)
    work = 10 ** rng.uniform(3, 7, 200)
    energy = 46e-6 + 2e-10 * work
    cost = fit_call_cost("Conv2d", work, energy * (1 + 0.01 * rng.standard_normal(200)))
    assert cost.per_call_j == pytest.approx(46e-6, rel=0.05)
    assert cost.j_per_work == pytest.approx(2e-10, rel=0.1)
    assert fit_call_cost("Flatten", np.zeros(5), np.full(5, 3e-6)).per_call_j == pytest.approx(3e-6)
    assert (
        fit_call_cost("x", np.array([1e3, 1e4, 1e5]), np.array([1e-7, 1e-6, 1e-5])).per_call_j == 0
    )


@pytest.mark.parametrize("once_fraction", [0.0, 1.0])
def test_the_fit_recovers_the_law(once_fraction: float) -> None:
    nets, costs, scores = analyse(_windows(once_fraction, np.random.default_rng(0)))
    assert len(nets) == 12
    for op, per_call in PER_CALL_J.items():  # the fitted intercept includes the loop's cost
        assert costs[op].per_call_j == pytest.approx(per_call + LOOP_J, rel=0.25)
    by_rule = {s.rule: s for s in scores}
    fitted = by_rule["once-fraction"].parameter
    assert fitted == pytest.approx(once_fraction, abs=0.25)
    assert by_rule["once-fraction"].median_ape_pct < 3
    if once_fraction == 0.0:
        assert by_rule["sum"].median_ape_pct < 3
        assert by_rule["sum"].median_pred_over_meas == pytest.approx(1.0, abs=0.02)
    else:
        assert by_rule["sum"].median_pred_over_meas > 1.02
        assert best_rule(scores).rule != "sum"
    assert by_rule["one-constant"].median_ape_pct > by_rule["once-fraction"].median_ape_pct
