"""Dataset assembly: measurement rows of one hardware -> feature table and per-sample targets.

Energy is modelled **per sample per epoch** (``energy_j / (samples * epochs)``), so a prediction
scales with the sample and epoch counts the caller asks for. :func:`dataset_size_check` tests that
assumption on rows that measure one configuration at several dataset sizes.

pandas lives here, at the dataset edge; predictors receive the frame built below.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from estimator.features import PROFILE_FEATURES, run_features
from joulecast.errors import FailedPrecondition, InvalidArgument, NotFound
from joulecast.graph import GraphError, GraphProfile, profile_graph
from joulecast.measurement import ESTIMATE_PREFIX, PHASES, Row, is_estimate, machine_name
from joulecast.store import MeasurementStore

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

TARGET_COLUMNS = (
    "energy_j",
    "energy_per_sample_j",
    "duration_s",
    "duration_per_sample_s",
    "gpu_util_mean",
)
KEY_COLUMNS = ("run_key", "config_id", "repeat")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Feature table of one hardware (one row per measured phase run) and what it rests on.

    ``frame`` holds :data:`PROFILE_FEATURES`, the run features (batch_size, samples, epochs,
    phase, family), the keys (run_key, config_id, repeat) and the targets: ``energy_j``,
    ``energy_per_sample_j`` (J per sample per epoch), ``duration_s``, ``duration_per_sample_s``
    and ``gpu_util_mean`` (percent, NaN where the run recorded none).
    """

    hardware: str
    frame: pd.DataFrame
    energy_source: str
    energy_is_estimate: bool
    sha256: str
    warnings: tuple[str, ...] = field(default=())
    source: Mapping[str, object] = field(default_factory=dict)
    """Where the rows came from: ``store_id`` and ``max_row_id`` of the store read
    (:meth:`joulecast.store.MeasurementStore.store_id`), so that a version knows which later
    deletions took rows it rests on."""

    @property
    def has_gpu_util(self) -> bool:
        """True when every row carries a GPU utilisation (GPU runs)."""
        util = self.frame["gpu_util_mean"]
        return bool(len(util)) and bool(util.notna().all())

    @property
    def phases(self) -> tuple[str, ...]:
        return tuple(p for p in PHASES if (self.frame["phase"] == p).any())


def choose_hardware(names: Iterable[str], hardware: str | None) -> str:
    """``hardware`` if present, the only one when None; else an error listing what exists."""
    names = sorted(set(names))
    if hardware is not None:
        if hardware not in names:
            raise NotFound(f"no measurements for hardware {hardware!r}; the store has {names}")
        return hardware
    if len(names) == 1:
        return names[0]
    if not names:
        raise FailedPrecondition("the measurement store holds no successful measurements")
    raise InvalidArgument(f"the store holds several hardware; choose one with --hardware: {names}")


def from_store(store_path: Path | str, hardware: str | None = None) -> Dataset:
    """Successful rows of one hardware in a measurement store, featurized from their graphs."""
    path = Path(store_path)
    if not path.is_file():
        raise NotFound(f"measurement store {path} does not exist")
    with MeasurementStore(path, read_only=True) as store, store.snapshot():
        rows = store.rows(status="ok")
        chosen = choose_hardware((r.hardware for r in rows), hardware)
        rows = [r for r in rows if r.hardware == chosen]
        graphs = {
            sha: store.get_graph(sha) for sha in {r.graph_sha256 for r in rows if r.graph_sha256}
        }
        max_row_id = store.max_row_id()
        # the rows deleted before this fit are not under it: a later retire counts only
        # the tombstones added since
        source = {
            "store_id": store.store_id(),
            "max_row_id": max_row_id,
            "deleted_before": store.deleted_count(chosen, max_row_id),
        }
    return dataclasses.replace(from_rows(rows, graphs, chosen), source=source)


def from_rows(rows: list[Row], graphs: dict[str, bytes | None], hardware: str) -> Dataset:
    """Featurize rows (all of ``hardware``) with one profile per distinct graph."""
    warnings: list[str] = []
    profiles: dict[str, GraphProfile | None] = {}
    records: list[dict[str, object]] = []
    skipped: Counter[str] = Counter()
    for row in rows:
        if row.hardware != hardware:
            raise InvalidArgument(f"row {row.run_key} is from {row.hardware}, not {hardware}")
        if not row.energy_j or row.energy_j <= 0 or row.samples <= 0 or row.epochs <= 0:
            skipped["no positive energy, samples or epochs"] += 1
            continue
        sha = row.graph_sha256
        if not sha or graphs.get(sha) is None:
            skipped["no stored graph"] += 1
            continue
        if sha not in profiles:
            try:
                profiles[sha] = profile_graph(graphs[sha])  # type: ignore[arg-type]
            except GraphError as exc:
                logger.warning("graph %s of %s cannot be profiled: %s", sha[:12], row.run_key, exc)
                profiles[sha] = None
        profile = profiles[sha]
        if profile is None:
            skipped["graph cannot be profiled"] += 1
            continue
        per = float(row.samples * row.epochs)
        records.append(
            {
                "run_key": row.run_key,
                "config_id": row.config_id,
                "repeat": row.repeat,
                **run_features(
                    profile,
                    phase=row.phase,
                    batch_size=row.batch_size,
                    samples=row.samples,
                    epochs=row.epochs,
                ),
                "energy_j": float(row.energy_j),
                "energy_per_sample_j": float(row.energy_j) / per,
                "duration_s": _num(row.duration_s),
                "duration_per_sample_s": _num(row.duration_s) / per,
                "gpu_util_mean": _num(row.gpu_util_mean),
                "energy_source": _source(row),
            }
        )
    for reason, n in sorted(skipped.items()):
        warnings.append(f"{n} row(s) skipped: {reason}")
    warnings.extend(_machines_warning(rows, hardware))
    warnings.extend(_replayed_warning(rows))
    import pandas as pd  # only when a frame is built: loading a predictor imports no pandas

    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        raise FailedPrecondition(f"no usable measurements for hardware {hardware!r}")
    return _finish(hardware, frame, warnings)


def _source(row: Row) -> str:
    """The row's energy source, named an estimate when the row says it is one or names none:
    a row that does not say which meter read it is never fitted as a measurement."""
    source = row.energy_source or ""
    if not source or (row.energy_is_estimate and not is_estimate(source)):
        return ESTIMATE_PREFIX + (source or "unknown")
    return source


def _replayed_warning(rows: list[Row]) -> list[str]:
    """A warning when rows were metered by a replayed trace (``--meter replay``): their energy
    is a recording of other work, played back while this work ran (a test of the GPU path
    without a GPU), not a reading of this work."""
    replayed = sum(1 for row in rows if row.meter == "replay")
    if not replayed:
        return []
    return [
        f"{replayed} row(s) were metered by a replayed trace (--meter replay): their energy is "
        "a recording of other work, not this work's; fit them to test the path, not to predict"
    ]


def _machines_warning(rows: list[Row], hardware: str) -> list[str]:
    """A warning when ``hardware``'s rows say they were measured on more than one machine
    (GPU rows by the GPU's name, CPU rows by the CPU model): a predictor of one id answers for
    one machine, and CPUs sold under one name spent 0.4-1.1x each other's time on the same
    work. Rows that name no machine (imported ones often) say nothing either way."""
    machines = Counter(name for row in rows if (name := machine_name(row)))
    if len(machines) < 2:
        return []
    return [
        f"the rows of {hardware} were measured on {len(machines)} machines "
        f"({'; '.join(f'{name}: {n} rows' for name, n in machines.most_common())}): a "
        "predictor of one hardware answers for one machine; give each its own name"
    ]


def from_frame(hardware: str, frame: pd.DataFrame) -> Dataset:
    """A dataset from an already featurized frame (tests and benchmarks build these)."""
    return _finish(hardware, frame.reset_index(drop=True), [])


def _num(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _finish(hardware: str, frame: pd.DataFrame, warnings: list[str]) -> Dataset:
    sources = Counter(frame["energy_source"])
    estimates = {s: n for s, n in sources.items() if is_estimate(s)}
    if estimates:
        source = max(estimates, key=lambda s: estimates[s])
        if len(sources) > 1:
            warnings.append(
                f"training rows mix energy sources {dict(sources)}; treated as estimate"
            )
    else:
        source = max(sources, key=lambda s: sources[s])
        if len(sources) > 1:
            warnings.append(f"training rows mix energy sources {dict(sources)}")
    frame = frame.sort_values(["config_id", "phase", "repeat", "samples"], kind="stable")
    frame = frame.reset_index(drop=True)
    return Dataset(
        hardware=hardware,
        frame=frame,
        energy_source=source,
        energy_is_estimate=bool(estimates),
        sha256=frame_sha256(frame),
        warnings=tuple(warnings),
    )


def frame_sha256(frame: pd.DataFrame) -> str:
    """Content hash of the columns a fit depends on (order-independent within the sort)."""
    columns = [
        c
        for c in (*KEY_COLUMNS, *PROFILE_FEATURES, "phase", "family", "batch_size", "samples")
        if c in frame
    ]
    columns += [c for c in ("epochs", *TARGET_COLUMNS, "energy_source") if c in frame]
    payload = frame[columns].to_json(orient="split", double_precision=15)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class SizeFit:
    """Energy vs dataset size for one configuration and phase: ``energy_j ≈ a + b·samples``."""

    config_id: str
    phase: str
    points: int
    sizes: tuple[int, ...]
    slope_j_per_sample: float
    intercept_j: float
    r2: float


def dataset_size_check(dataset: Dataset) -> list[SizeFit]:
    """Affine fits of energy on sample count where one configuration ran at several sizes.

    Per-sample modelling assumes the intercept is small against ``slope x samples`` and R² ~ 1.
    """
    frame = dataset.frame
    fits: list[SizeFit] = []
    for (config, phase, batch, epochs), group in frame.groupby(
        ["config_id", "phase", "batch_size", "epochs"], sort=True
    ):
        sizes = group["samples"].to_numpy(float)
        if len(np.unique(sizes)) < 2:
            continue
        energy = group["energy_j"].to_numpy(float) / float(epochs)
        slope, intercept = np.polyfit(sizes, energy, 1)
        fitted = intercept + slope * sizes
        total = float(np.sum((energy - energy.mean()) ** 2))
        r2 = 1.0 - float(np.sum((energy - fitted) ** 2)) / total if total > 0 else 1.0
        fits.append(
            SizeFit(
                config_id=str(config) if batch == 8 else f"{config}@bs{batch}",
                phase=str(phase),
                points=len(sizes),
                sizes=tuple(int(s) for s in sorted(set(sizes))),
                slope_j_per_sample=float(slope),
                intercept_j=float(intercept),
                r2=r2,
            )
        )
    return fits


def size_check_summary(fits: list[SizeFit]) -> dict[str, object]:
    """JSON-ready summary of :func:`dataset_size_check` (stored in the manifest)."""
    if not fits:
        return {"checked": 0, "note": "no configuration measured at several dataset sizes"}
    r2 = [f.r2 for f in fits]
    rel_intercept = [
        abs(f.intercept_j) / max(abs(f.slope_j_per_sample) * max(f.sizes), 1e-12) for f in fits
    ]
    return {
        "checked": len(fits),
        "r2_min": min(r2),
        "r2_median": float(np.median(r2)),
        "intercept_share_median": float(np.median(rel_intercept)),
        "fits": [asdict(f) for f in fits],
    }


AGGREGATE_KEYS = ("config_id", "phase", "batch_size", "samples", "epochs")
"""A configuration-phase-sample count: the repeats of one measurement."""


def aggregate_repeats(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per :data:`AGGREGATE_KEYS` with the median of the repeats' targets.

    Keeps the spread: ``repeats`` (how many) and ``energy_cv`` (std / mean of the repeats'
    energy, 0 for one repeat). Fitting on medians stops a configuration measured more often from
    weighing more, and a noisy repeat from pulling the fit.
    """
    import pandas as pd

    targets = [c for c in TARGET_COLUMNS if c in frame]
    grouped = frame.groupby(list(AGGREGATE_KEYS), sort=True, dropna=False)
    first = grouped.first().drop(columns=targets, errors="ignore")
    medians = grouped[targets].median()
    energy = grouped["energy_j"]
    spread = pd.DataFrame(
        {
            "repeats": energy.size(),
            "energy_cv": (energy.std(ddof=0) / energy.mean()).fillna(0.0),
        }
    )
    out = pd.concat([first, medians, spread], axis=1).reset_index()
    out["repeat"] = 0
    return out
