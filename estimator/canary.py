"""The check a new predictor version must pass before it serves.

Bad data (absurd rows, a degenerate fit) can produce a version whose selected predictor has an
infinite CV error or answers nothing. :func:`check_published` asks the version, through the same
public path the server uses (:func:`estimator.service.estimate`), about a canary set of graphs
of every family and several run sizes, and lists every reason not to serve it: a selected
predictor without a finite CV score, an answer that is missing, not finite or not positive, or a
training pass that costs less than testing the same samples. A phase the service refuses on
purpose (its interval would be wider than ``MAX_INTERVAL_FACTOR``: the canaries lie partly
outside any one hardware's data) is not a fault, but a version must answer some canary in every
phase it claims. An empty list means it may serve.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from estimator.service import estimate
from joulecast.errors import FailedPrecondition, JoulecastError
from joulecast.graph import GraphProfile

if TYPE_CHECKING:
    from estimator.artifacts import Published

RUNS = ((1, 1, 1), (32, 1578, 10), (8, 100_000, 100))
"""(batch_size, samples, epochs) asked for every canary graph."""


class CanaryFailed(FailedPrecondition):
    """A freshly fitted version failed the canary check; it was kept aside, not served."""

    def __init__(self, version: str, reasons: list[str]) -> None:
        shown = "; ".join(reasons[:8])
        if len(reasons) > 8:
            shown += f"; and {len(reasons) - 8} more"
        super().__init__(f"version {version} kept aside, not served: {shown}")
        self.version = version
        self.reasons = tuple(reasons)


def _profile(family: str, flops: int, params: int, steps: int, depth: int) -> GraphProfile:
    kinds = {"conv": 0, "dense": 0, "recurrent": 0, "other": flops // 50}
    main = {"mlp": "dense", "cnn": "conv", "rnn": "recurrent", "crnn": "conv", "other": "dense"}
    kinds[main[family]] += flops - sum(kinds.values())
    if family == "crnn":
        kinds["recurrent"] = flops // 4
        kinds["conv"] -= flops // 4
    return GraphProfile(
        family=family,
        family_reason="canary",
        params=params,
        flops_forward=flops,
        flops_train=3 * flops,
        flops_by_kind=kinds,
        weight_bytes=4 * params,
        activation_bytes=64 * depth * 1024,
        arithmetic_intensity=flops / max(1, 4 * params + 64 * depth * 1024),
        recurrent_steps=steps,
        depth=depth,
        node_count=4 * depth,
    )


CANARIES: tuple[GraphProfile, ...] = (
    _profile("mlp", 2_000_000, 1_000_000, 0, 4),
    _profile("mlp", 200_000_000, 100_000_000, 0, 12),
    _profile("cnn", 50_000_000, 200_000, 0, 10),
    _profile("cnn", 2_000_000_000, 5_000_000, 0, 30),
    _profile("rnn", 20_000_000, 300_000, 64, 6),
    _profile("crnn", 112_592_128, 400_000, 64, 20),
    _profile("other", 30_000_000, 100_000, 0, 15),
)
"""Per-sample profiles of every family, small to large, in the range of the paper's models."""


def _finite_score(scores: Any, phase: str, name: str) -> bool:
    """True when some CV table of ``scores`` gives ``name`` a finite error for ``phase``."""
    found = False
    if not isinstance(scores, dict):
        return False
    for table in scores.values():
        entry = table.get(phase, {}).get(name) if isinstance(table, dict) else None
        if not isinstance(entry, dict):
            continue
        found = True
        for key in ("mape_pct", "q_log"):
            value = entry.get(key)
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
                return False
    return found


def check_published(published: Published) -> list[str]:
    """Every reason not to serve ``published`` (empty: it may serve)."""
    bundle = published.bundle
    reasons: list[str] = []
    for phase in bundle.phases:
        name = bundle.selected[phase]
        if not _finite_score(bundle.scores, phase, name):
            reasons.append(f"{phase}: the selected predictor {name} has no finite CV score")
    answered = dict.fromkeys(bundle.phases, 0)
    for profile in CANARIES:
        for batch_size, samples, epochs in RUNS:
            what = f"{profile.family} {profile.flops_forward:.2e} FLOPs, {samples}x{epochs}"
            try:
                answer = estimate(
                    published, profile, batch_size=batch_size, samples=samples, epochs=epochs
                )
            except JoulecastError as exc:
                reasons.append(f"{what}: no answer ({exc})")
                continue
            phases = {"train": answer.train, "test": answer.test}
            for phase, est in phases.items():
                if phase in bundle.phases and est is None:
                    if phase not in answer.refused:
                        reasons.append(f"{what}: no {phase} prediction")
                elif est is not None:
                    answered[phase] = answered.get(phase, 0) + 1
                if est is None:
                    continue
                if not (math.isfinite(est.energy_j) and est.energy_j > 0):
                    reasons.append(f"{what}: {phase} energy {est.energy_j!r} J")
            train, test = phases["train"], phases["test"]
            if train is not None and test is not None and train.energy_j < test.energy_j:
                # Both phases are asked for the same samples and epochs.
                reasons.append(
                    f"{what}: training ({train.energy_j:.3g} J) costs less than testing the "
                    f"same samples ({test.energy_j:.3g} J)"
                )
    reasons.extend(
        f"{phase}: no canary graph got an answer (every one refused as too uncertain)"
        for phase, n in answered.items()
        if n == 0
    )
    return reasons


def require_servable(published: Published) -> None:
    """Raise :class:`CanaryFailed` unless ``published`` passes :func:`check_published`."""
    reasons = check_published(published)
    if reasons:
        raise CanaryFailed(published.version, reasons)
