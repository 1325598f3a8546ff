"""What a published predictor version says about itself: one record, read by the server's
ListPredictors, ``joulecast predictors`` and ``joulecast fit``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from estimator.artifacts import Published

if TYPE_CHECKING:
    from estimator.transfer.calibrated import CalibratedModel


@dataclass(frozen=True)
class PredictorDescription:
    """One predictor version of one hardware: where its energy came from (``energy_source``,
    ``energy_is_estimate``), the predictor selected per phase and its fallback for an unseen
    family, its grouped-CV scores, what its training rows cover, and the layer-sum model's
    manifest entry when it has one."""

    hardware: str
    version: str
    created_at: str
    energy_source: str
    energy_is_estimate: bool
    phases: tuple[str, ...]
    families: Mapping[str, tuple[str, ...]]
    selected: Mapping[str, str]
    """Phase -> name of the predictor that answers it."""
    fallback_unseen_family: Mapping[str, str]
    scores: Mapping[str, Any]
    """Scheme (``loco``, ``lofo``) -> phase -> predictor -> CV figures."""
    dataset: Mapping[str, Any]
    domain: Mapping[str, Any]
    notes: tuple[str, ...]
    layer_sum: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, published: Published) -> PredictorDescription:
        bundle = published.bundle
        return cls(
            hardware=bundle.hardware,
            version=published.version,
            created_at=published.created_at,
            energy_source=bundle.energy_source,
            energy_is_estimate=bundle.energy_is_estimate,
            phases=tuple(bundle.phases),
            families={p: tuple(f) for p, f in bundle.families.items()},
            selected=dict(bundle.selected),
            fallback_unseen_family=dict(bundle.fallback),
            scores=bundle.scores,
            dataset=bundle.dataset,
            domain=dict(bundle.domain),
            notes=tuple(bundle.notes),
            layer_sum=dict(bundle.layer_sum_info) if bundle.layer_sum is not None else None,
        )

    def selected_text(self) -> str:
        """``"train=boosted, test=affine"``: the selection on one line."""
        return ", ".join(f"{phase}={name}" for phase, name in self.selected.items())

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``joulecast predictors --json``, ListPredictors' ``details_json``);
        ``layer_sum`` only when the version has a layer-sum model."""
        out: dict[str, Any] = {
            "hardware": self.hardware,
            "version": self.version,
            "created_at": self.created_at,
            "energy_source": self.energy_source,
            "energy_is_estimate": self.energy_is_estimate,
            "phases": list(self.phases),
            "families": {p: list(f) for p, f in self.families.items()},
            "selected": dict(self.selected),
            "fallback_unseen_family": dict(self.fallback_unseen_family),
            "scores": self.scores,
            "dataset": self.dataset,
            "domain": dict(self.domain),
            "notes": list(self.notes),
        }
        if self.layer_sum is not None:
            out["layer_sum"] = dict(self.layer_sum)
        return out


def describe_published(published: Published) -> PredictorDescription:
    return PredictorDescription.of(published)


def describe_calibration(model: CalibratedModel) -> PredictorDescription:
    """A calibrated GPU (the transfer model fitted to a few rows of it) in the same record, so
    that ``joulecast fit``, Retrain and ListPredictors report it like a predictor version:
    ``scores`` holds the calibration's held-out errors (``loco``: phase -> median APE and
    log-error quantiles), ``notes`` what it rests on."""
    from estimator.transfer.serve import CALIBRATED_PREDICTOR

    info = model.calibration
    phases = tuple(model.bands)
    held = info.get("held_out", {})
    notes = [
        f"calibrated transfer model: {model.rows} rows of {len(info.get('configurations', []))} "
        f"configurations measured {model.measured}, prior sigma {info.get('sigma')} "
        f"(prior transfer model {info.get('prior', {}).get('version', '?')})",
    ]
    for phase, errors in info.get("log_errors", {}).items():
        before, after = errors.get("prior", {}), errors.get("calibrated", {})
        notes.append(
            f"{phase}: the rows' median error {before.get('median_ape', float('nan')):.1%} "
            f"before calibration, {after.get('median_ape', float('nan')):.1%} after"
            + (
                f"; held out by configuration {held[phase]['median_ape']:.1%}"
                if phase in held
                else "; nothing held out"
            )
        )
    return PredictorDescription(
        hardware=model.hardware,
        version=model.version,
        created_at=str(info.get("fitted_at", "")),
        energy_source="+".join(sorted(info.get("energy_sources", {}))) or "unknown",
        energy_is_estimate=False,
        phases=phases,
        families={},
        selected={phase: CALIBRATED_PREDICTOR for phase in phases},
        fallback_unseen_family={phase: CALIBRATED_PREDICTOR for phase in phases},
        scores={"loco": {phase: {CALIBRATED_PREDICTOR: dict(v)} for phase, v in held.items()}},
        dataset={
            "rows": model.rows,
            "configs": len(info.get("configurations", [])),
            "families": [],
            "calibrated_gpu": model.gpu,
        },
        domain={},
        notes=tuple(notes),
    )
