"""The human-readable table of one prediction (``joulecast predict`` without ``--json``)."""

from __future__ import annotations

from pathlib import Path

from client.results import PredictionReply
from joulecast.carbon import J_PER_KWH
from joulecast.measurement import PHASES


def _fmt_j(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def _fmt_s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _fmt_w(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _tier_and_limit(result: PredictionReply) -> str:
    """The tier when the answer did not come from this hardware's own rows (transferred,
    calibrated), and the power limit asked for. "measured" is left out: beside rows whose
    energy was estimated it would read as a contradiction (the energy source line says what
    the rows are)."""
    parts = [] if result.tier == "measured" else [result.tier]
    if result.power_limit_w is not None:
        parts.append(f"power limit {result.power_limit_w:g} W")
    if result.precision not in (None, "fp32"):
        parts.append(str(result.precision))
    return f"   ({', '.join(parts)})" if parts else ""


def format_prediction(
    result: PredictionReply, model: Path | str, *, uploaded_bytes: int = 0
) -> str:
    """The human-readable table of one prediction."""
    lines = [
        f"model         {model}  ({uploaded_bytes:,} bytes uploaded)",
        f"family        {result.family}  ({result.family_reason})",
        f"params        {result.params:,}",
        f"FLOPs/sample  forward {result.flops_forward:.3e}   train {result.flops_train:.3e}",
        f"hardware      {result.hardware}   predictor version {result.predictor_version}"
        + _tier_and_limit(result),
        f"energy source {result.energy_source}",
    ]
    if result.energy_is_estimate:
        lines.append(
            "ESTIMATED     the predictor learned from estimated energy (no power meter), "
            "not from measurements"
        )
    header = f"{'phase':<6} {'energy (J)':>14} {'energy (kWh)':>14} {'interval (J)':>28} {'duration (s)':>13} {'power (W)':>10}  predictor"
    lines += ["", header, "-" * len(header)]
    for phase in PHASES:
        est = result.phase(phase)
        if est is None:
            lines.append(f"{phase:<6} {'unavailable: no predictor covers this phase':>14}")
            continue
        interval = f"[{_fmt_j(est.energy_low_j)}, {_fmt_j(est.energy_high_j)}]"
        lines.append(
            f"{phase:<6} {_fmt_j(est.energy_j):>14} {est.energy_j / J_PER_KWH:>14.3e} "
            f"{interval:>28} {_fmt_s(est.duration_s):>13} {_fmt_w(est.power_w):>10}  "
            f"{est.predictor}"
        )
    lines += _format_footprint(result)
    if result.warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in result.warnings]
    return "\n".join(lines)


def _fmt_g(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def _format_footprint(result: PredictionReply) -> list[str]:
    """Carbon and cost rows, when the prediction carries them (``--region``/``--price-per-kwh``)."""
    grid = result.grid
    price = result.price_per_kwh
    if grid is None and price is None:
        return []
    lines = [""]
    if grid is not None:
        lines.append(
            f"grid          {grid.region} ({grid.region_name}): "
            f"{grid.co2_g_per_kwh:.1f} gCO2eq/kWh, mix of {grid.year} ({grid.source})"
        )
    if price is not None:
        lines.append(f"price         {price:g} per kWh")
    if result.energy_is_estimate:
        lines.append("ESTIMATED     carbon and cost come from estimated energy: estimates too")
    header = f"{'phase':<6} {'kWh':>11} {'gCO2eq':>12} {'interval (gCO2eq)':>26} {'cost':>11} {'interval (cost)':>24}"
    lines += ["", header, "-" * len(header)]
    for phase in PHASES:
        est = result.phase(phase)
        if est is None or est.footprint is None:
            continue
        fp = est.footprint
        co2 = cost = co2_int = cost_int = "-"
        if fp.co2_g is not None:
            co2 = _fmt_g(fp.co2_g)
            co2_int = f"[{_fmt_g(fp.co2_low_g)}, {_fmt_g(fp.co2_high_g)}]"
        if fp.cost is not None:
            cost = f"{fp.cost:.4g}"
            cost_int = f"[{fp.cost_low:.4g}, {fp.cost_high:.4g}]"
        lines.append(
            f"{phase:<6} {fp.energy_kwh:>11.3e} {co2:>12} {co2_int:>26} {cost:>11} {cost_int:>24}"
        )
    return lines
