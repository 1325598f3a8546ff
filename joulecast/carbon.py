"""Carbon and cost of a predicted energy, from CodeCarbon's bundled energy-mix data (offline).

CodeCarbon ships ``data/private_infra/global_energy_mix.json``: per country (ISO 3166-1
alpha-3 code), the grid's carbon intensity in gCO2eq/kWh and the year of the mix. CodeCarbon
uses that ``carbon_intensity`` for a country's emissions; so does joulecast. The file is found
and read directly (``importlib.util.find_spec`` does not import codecarbon, whose import costs
a second and more), once per process.

gCO2eq = kWh x intensity, applied to the energy and to both ends of its interval; the
intensity's own uncertainty is not modelled. Carbon derived from estimated energy is an
estimate too: the caller keeps the energy's ``energy_is_estimate`` next to these figures.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

from joulecast.errors import FailedPrecondition, InvalidArgument

J_PER_KWH = 3.6e6
MIX_FILE = Path("data") / "private_infra" / "global_energy_mix.json"


@dataclass(frozen=True)
class GridIntensity:
    """A region's grid: ``co2_g_per_kwh`` in gCO2eq per kWh for the mix of ``year``."""

    region: str
    region_name: str
    co2_g_per_kwh: float
    year: int
    source: str


@dataclass(frozen=True)
class PhaseFootprint:
    """One phase's energy in kWh with its interval, and, when asked for, its gCO2eq (needs a
    region) and cost (needs a price per kWh, in the price's currency)."""

    energy_kwh: float
    energy_low_kwh: float
    energy_high_kwh: float
    co2_g: float | None = None
    co2_low_g: float | None = None
    co2_high_g: float | None = None
    cost: float | None = None
    cost_low: float | None = None
    cost_high: float | None = None


def codecarbon_mix_path() -> Path:
    """Where the installed codecarbon keeps ``global_energy_mix.json`` (codecarbon is not
    imported)."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(
            "carbon figures need CodeCarbon's energy-mix data: pip install codecarbon"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MIX_FILE
    if not path.is_file():
        raise FailedPrecondition(f"CodeCarbon's energy-mix data is missing: {path}")
    return path


@functools.cache
def load_intensities(path: Path | None = None) -> dict[str, GridIntensity]:
    """Every region of the energy-mix file, by code (``path`` ``None``: CodeCarbon's own)."""
    path = codecarbon_mix_path() if path is None else Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FailedPrecondition(f"cannot read the energy-mix data {path}: {exc}") from exc
    try:
        version = importlib.metadata.version("codecarbon")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    source = f"CodeCarbon {version} {MIX_FILE.as_posix()}"
    table: dict[str, GridIntensity] = {}
    for code, entry in raw.items():
        value = entry.get("carbon_intensity")
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            continue
        table[code.upper()] = GridIntensity(
            region=code.upper(),
            region_name=str(entry.get("country_name", code)),
            co2_g_per_kwh=float(value),
            year=int(entry.get("year", 0) or 0),
            source=source,
        )
    if not table:
        raise FailedPrecondition(f"the energy-mix data {path} holds no carbon intensity")
    return table


def grid_intensity(region: str, path: Path | None = None) -> GridIntensity:
    """The grid of ``region`` (ISO 3166-1 alpha-3, any case); InvalidArgument when unknown."""
    table = load_intensities(path)
    found = table.get(region.strip().upper())
    if found is None:
        raise InvalidArgument(
            f"unknown region {region[:40]!r}: use an ISO 3166-1 alpha-3 country code of "
            f"CodeCarbon's energy-mix data (e.g. FRA, DEU, USA); `joulecast regions` lists "
            f"the {len(table)} codes"
        )
    return found


def check_price(price_per_kwh: float | None) -> float | None:
    """The price as answers use it: a finite number >= 0, and +0.0 for -0.0 (a price of
    "minus nothing" must not make costs of -0.0)."""
    if price_per_kwh is None:
        return None
    if not (math.isfinite(price_per_kwh) and price_per_kwh >= 0):
        raise InvalidArgument(f"price_per_kwh must be a finite number >= 0, got {price_per_kwh}")
    return price_per_kwh + 0.0


def _finite(values: tuple[float, ...], what: str, phase: str) -> tuple[float, ...]:
    """``values`` if every one is finite; else InvalidArgument: a finite question must get a
    finite answer, and one past the double range is refused with the reason."""
    if all(math.isfinite(v) for v in values):
        return tuple(v + 0.0 for v in values)
    raise InvalidArgument(
        f"the {phase} phase's {what} exceeds the range of a double (about 1.8e308); ask with a "
        "smaller price, sample count or epoch count"
    )


def phase_footprint(
    energy_j: float,
    energy_low_j: float,
    energy_high_j: float,
    grid: GridIntensity | None,
    price_per_kwh: float | None,
    phase: str = "",
) -> PhaseFootprint:
    """kWh, gCO2eq and cost of one phase's energy (J) and interval: finite numbers, never -0.0
    (InvalidArgument when one would not fit in a double)."""
    where = phase or "predicted"
    kwh = _finite(
        (energy_j / J_PER_KWH, energy_low_j / J_PER_KWH, energy_high_j / J_PER_KWH),
        "energy",
        where,
    )
    co2: tuple[float | None, ...] = (None, None, None)
    if grid is not None:
        co2 = _finite(tuple(k * grid.co2_g_per_kwh for k in kwh), "carbon (gCO2eq)", where)
    cost: tuple[float | None, ...] = (None, None, None)
    price = check_price(price_per_kwh)
    if price is not None:
        cost = _finite(tuple(k * price for k in kwh), "cost", where)
    return PhaseFootprint(*kwh, *co2, *cost)
