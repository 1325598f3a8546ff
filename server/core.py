"""The transport-agnostic core: profile a graph, predict its energy, ingest rows, retrain.

Nothing here knows about gRPC; the servicer adapts these calls and ``server.errors`` maps the
:class:`~joulecast.errors.JoulecastError` they raise to status codes.

Threading: predictions run concurrently on the server's worker threads. A retrain fits in the
calling thread while predictions keep being answered from the current version; the registry
then swaps the new version in with one reload. Writes to the store are serialised by a lock and
each call's accepted rows are committed in one transaction before the call returns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from estimator.layerwise import LayerAnswer
from estimator.service import check_counts, in_process_layer_answer
from joulecast.carbon import (
    GridIntensity,
    PhaseFootprint,
    check_price,
    grid_intensity,
    phase_footprint,
)
from joulecast.errors import (
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    JoulecastError,
    ResourceLimit,
)
from joulecast.graph import GraphLimits, GraphProfile, profile_graph
from joulecast.hardware_name import check_hardware_name, check_hardware_query
from joulecast.measurement import PHASES, check_row, graph_sha256
from joulecast.store import MeasurementStore
from rpc.records import ALREADY_STORED, RowVerdict
from server.cancel import CallCancel
from server.measurements import IncomingRow
from server.retrain_child import FitInChild, FitStopped
from server.row_budget import TRIM_AFTER_BYTES, CallSpending, RowBudget, trim

if TYPE_CHECKING:
    from estimator.answers import EnergyPrediction
    from estimator.description import PredictorDescription
    from server.profiling import ProfilePool

logger = logging.getLogger(__name__)

MAX_RUN_KEY = 1000
STOPPED_RETRAIN_WAIT_S = 10.0
"""How long a Retrain waits for the one before it to end once that one's call was stopped (its
fit is killed within a second; reloading the served version takes a moment more)."""


class Registry(Protocol):
    """What the core needs of ``estimator.service.PredictorRegistry``. A registry may also
    have ``serving(hardware) -> object``, the loaded version that answers for ``hardware``
    (the same object until a reload): the core then caches answers (:class:`_AnswerCache`);
    and ``deleted_under(hardware, store) -> int`` with ``retire(hardware) -> str``: a retrain
    that cannot fit then stops serving a version that rested on deleted rows."""

    @property
    def default_hardware(self) -> str | None: ...

    def predict(self, profile: GraphProfile, **kwargs: Any) -> EnergyPrediction: ...

    def reload(self, hardware: str) -> str: ...

    def describe(self) -> list[PredictorDescription]: ...


class FitDescription(Protocol):
    """What a retrain answers with of the version a fit published
    (:class:`estimator.description.PredictorDescription`, or what a fit in a child sent back)."""

    @property
    def hardware(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def scores(self) -> Any: ...

    @property
    def energy_source(self) -> str: ...

    @property
    def energy_is_estimate(self) -> bool: ...

    def selected_text(self) -> str: ...


FitFn = Callable[..., FitDescription]
"""``fit(store, hardware, artifacts_dir)``; the default one (and the server's child) also takes
``allow_idle_meter=True``."""


@dataclass(frozen=True)
class PredictQuery:
    """One prediction request. ``hardware`` ``None``: the server's default.
    ``observed_gpu_util`` in percent. ``region`` (ISO 3166-1 alpha-3) and ``price_per_kwh``
    ask for each phase's carbon and cost (:mod:`joulecast.carbon`)."""

    onnx_model: bytes
    batch_size: int
    samples: int
    epochs: int
    hardware: str | None = None
    observed_gpu_util: float | None = None
    region: str | None = None
    price_per_kwh: float | None = None
    power_limit_w: float | None = None
    """A GPU's power limit in W (None: the board's default)."""
    precision: str | None = None
    """``fp32`` (None), ``amp-fp16`` or ``amp-bf16``: what the run's matrix work runs in."""

    def check(self) -> None:
        """Raise :class:`InvalidArgument` naming the first bad field."""
        if not self.onnx_model:
            raise InvalidArgument("onnx_model is empty: send a serialised ONNX graph")
        check_counts(self.batch_size, self.samples, self.epochs, self.observed_gpu_util)
        if self.hardware is not None:
            check_hardware_query(self.hardware)
        check_price(self.price_per_kwh)
        limit = self.power_limit_w
        if limit is not None and not (
            isinstance(limit, int | float) and math.isfinite(limit) and limit > 0
        ):
            raise InvalidArgument(f"power_limit_w must be a positive number of W, got {limit!r}")


@dataclass(frozen=True)
class PredictResult:
    """The graph's profile and the estimator's ``EnergyPrediction`` for it."""

    profile: GraphProfile
    prediction: EnergyPrediction
    warnings: tuple[str, ...]
    grid: GridIntensity | None = None
    """The region's grid, when the query named one."""
    price_per_kwh: float | None = None
    footprints: tuple[tuple[str, PhaseFootprint], ...] = ()
    """``(phase, footprint)`` of each available phase, when a region or a price was given."""


@dataclass(frozen=True)
class RetrainResult:
    """What a retrain did. ``version`` is empty when the hardware is no longer served (its
    version rested on deleted rows and no new one could be fitted: ``selected`` says why)."""

    hardware: str
    version: str
    selected: str
    scores: object
    """The new version's cross-validation scores (JSON-ready), or {} when none was fitted."""
    energy_source: str = ""
    """Where the new version's training energy came from; empty when none was fitted."""
    energy_is_estimate: bool = False


class _ProfileCache:
    """A small LRU of profiles by graph content hash (profiling is pure: same bytes, same
    profile), so that a client asking about one graph with several options pays once."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, GraphProfile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> GraphProfile | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, profile: GraphProfile) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._items[key] = profile
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


AnswerKey = tuple[str, int, int, int, str | None, str | None, str | None, str]
"""(graph sha256, batch size, samples, epochs, hardware asked for, observed utilisation and
power limit as ``float.hex()`` or None, precision): with the predictor version, everything a
prediction depends on."""


class _AnswerCache:
    """A small LRU of predictions, so that a repeated request skips the predictor.

    An answer depends on the graph (by content hash: its profile), the run counts, the hardware
    asked for, the observed utilisation, and the predictor version that computed it: each entry
    keeps the registry's loaded version (``Registry.serving``) and is served only while that
    same object still serves. A reload swaps in another object, and the first request that
    meets an older entry drops them all (an old version's models are not kept alive)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[AnswerKey, tuple[object, EnergyPrediction]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: AnswerKey, serving: object) -> EnergyPrediction | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if found[0] is not serving:
                self._items.clear()
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: AnswerKey, serving: object, prediction: EnergyPrediction) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._items[key] = (serving, prediction)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


class _LayerModels:
    """The files of the layer-sum models served, by model object, with a content key: a worker
    is sent a model once and then named it by key (the files of the shipped model weigh 8 MB).
    Kept for the few most recent models (one per version serving)."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._items: OrderedDict[int, tuple[object, str, dict[str, bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    def files(self, model: Any) -> tuple[str, Callable[[], dict[str, bytes]]]:
        with self._lock:
            found = self._items.get(id(model))
            if found is not None and found[0] is model:
                self._items.move_to_end(id(model))
                files = found[2]
                return found[1], lambda: files
        produced = model.to_files()
        digest = hashlib.sha256()
        for name in sorted(produced):
            digest.update(name.encode() + b"\0" + hashlib.sha256(produced[name]).digest())
        key = digest.hexdigest()[:16]
        with self._lock:
            self._items[id(model)] = (model, key, produced)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return key, lambda: produced


class EstimatorCore:
    """Profiles graphs and answers predictions from ``registry``; stores rows in ``db_path``
    and retrains with ``fit`` (``estimator.publish.fit_and_publish`` by default).

    ``pool`` (:class:`server.profiling.ProfilePool`, what the server passes) profiles graphs
    and answers layer-sum's per-node predictions in worker processes, under deadlines, stopped
    when the call's ``cancel`` says its caller left; without one, ``profiler`` (by default the
    profiler itself) and the per-node path run in the calling thread (tests of the core).
    Answers are cached (``answer_cache_size``) only when the registry has ``serving(hardware)``
    (the loaded version, see :class:`_AnswerCache`); otherwise every request asks the registry.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        artifacts_dir: Path,
        db_path: Path | None = None,
        graph_limits: GraphLimits | None = None,
        max_row_graph_bytes: int = 4 * 1024 * 1024,
        max_rows_per_call: int = 20_000,
        row_budget: RowBudget | None = None,
        profile_cache_size: int = 256,
        answer_cache_size: int = 1024,
        fit: FitFn | None = None,
        profiler: Callable[[bytes], GraphProfile] | None = None,
        pool: ProfilePool | None = None,
    ) -> None:
        self._registry = registry
        self._artifacts_dir = Path(artifacts_dir)
        self._db_path = Path(db_path) if db_path is not None else None
        self._limits = graph_limits or GraphLimits()
        self._max_row_graph_bytes = max_row_graph_bytes
        self._max_rows = max_rows_per_call
        self._row_budget = row_budget or RowBudget()
        self._cache = _ProfileCache(profile_cache_size)
        self._answers = _AnswerCache(answer_cache_size)
        self._serving: Callable[[str | None], object] | None = getattr(registry, "serving", None)
        self._fit = fit
        self._pool = pool
        self._profiler = profiler or (lambda data: profile_graph(data, self._limits))
        self._layer_models = _LayerModels()
        self._write_lock = threading.Lock()
        self._retrain_lock = threading.Lock()
        self._retrain_cancel: CallCancel | None = None
        """The running retrain's cancellation (None: none running, or one nothing can stop)."""

    # -- predict ---------------------------------------------------------------------------

    def profile(self, onnx_model: bytes, cancel: CallCancel | None = None) -> GraphProfile:
        """The profile of one graph (cached by content hash)."""
        return self._profile(graph_sha256(onnx_model), onnx_model, cancel)

    def _profile(
        self, sha: str, onnx_model: bytes, cancel: CallCancel | None = None
    ) -> GraphProfile:
        found = self._cache.get(sha)
        if found is None:
            if self._pool is not None:
                found = self._pool.profile(onnx_model, cancel)
            else:
                found = self._profiler(onnx_model)
            self._cache.put(sha, found)
        return found

    def _layer_answer(
        self, onnx_model: bytes, cancel: CallCancel | None
    ) -> Callable[[Any, int], Any]:
        """One forward pass of ``onnx_model`` by a layer-sum model: in the worker pool (the
        per-node records of a graph of 49,000 nodes and their prediction never run in the
        server), or in this thread when there is no pool."""
        if self._pool is None:
            return in_process_layer_answer(onnx_model, self._limits)
        pool = self._pool

        def answer(model: Any, batch_size: int) -> Any:
            key, files = self._layer_models.files(model)
            found = pool.layer_sum(onnx_model, key, files, batch_size, cancel)
            return LayerAnswer(
                energy_j=float(found["energy_j"]),
                low_j=float(found["low_j"]),
                high_j=float(found["high_j"]),
                duration_s=float(found["duration_s"]),
                warnings=tuple(str(w) for w in found.get("warnings", ())),
                by_op_j={str(k): float(v) for k, v in dict(found.get("by_op_j", {})).items()},
            )

        return answer

    def _prediction(
        self,
        sha: str,
        profile: GraphProfile,
        query: PredictQuery,
        cancel: CallCancel | None = None,
    ) -> Any:
        """The registry's prediction for ``query``, from the answer cache when it holds one
        computed by the version serving now."""
        hardware = query.hardware or None
        util = query.observed_gpu_util
        key: AnswerKey = (
            sha,
            query.batch_size,
            query.samples,
            query.epochs,
            hardware,
            None if util is None else float(util).hex(),  # -0.0 and 0.0 print differently
            None if query.power_limit_w is None else float(query.power_limit_w).hex(),
            query.precision or "fp32",
        )
        serving = self._serving(hardware) if self._serving is not None else None
        if serving is not None:
            found = self._answers.get(key, serving)
            if found is not None:
                return found
        prediction = self._registry.predict(
            profile,
            batch_size=query.batch_size,
            samples=query.samples,
            epochs=query.epochs,
            hardware=hardware,
            observed_gpu_util=util,
            layer_answer=self._layer_answer(query.onnx_model, cancel),
            **({} if query.power_limit_w is None else {"power_limit_w": query.power_limit_w}),
            **({} if query.precision is None else {"precision": query.precision}),
        )
        if serving is not None:
            self._answers.put(key, serving, prediction)
        return prediction

    def predict(self, query: PredictQuery, cancel: CallCancel | None = None) -> PredictResult:
        """The answer to ``query``; ``cancel`` stops its work when the caller goes away."""
        query.check()
        grid = grid_intensity(query.region) if query.region is not None else None
        sha = graph_sha256(query.onnx_model)
        profile = self._profile(sha, query.onnx_model, cancel)
        prediction = self._prediction(sha, profile, query, cancel)
        _require_finite(prediction)
        warnings = tuple(dict.fromkeys((*profile.warnings, *prediction.warnings)))
        if grid is None and query.price_per_kwh is None:
            return PredictResult(profile=profile, prediction=prediction, warnings=warnings)
        price = check_price(query.price_per_kwh)
        footprints = tuple(
            (
                phase,
                phase_footprint(
                    est.energy_j, est.energy_low_j, est.energy_high_j, grid, price, phase
                ),
            )
            for phase in PHASES
            if (est := getattr(prediction, phase)) is not None
        )
        if prediction.energy_is_estimate:
            warnings += (
                "carbon and cost are derived from estimated energy (the predictor learned from "
                "estimates, not from a power meter): they are estimates too",
            )
        return PredictResult(
            profile=profile,
            prediction=prediction,
            warnings=warnings,
            grid=grid,
            price_per_kwh=price,
            footprints=footprints,
        )

    def describe(self) -> tuple[list[PredictorDescription], str | None]:
        """The predictors served and the default hardware."""
        described = self._registry.describe()
        try:
            default = self._registry.default_hardware
        except FailedPrecondition:  # nothing published yet
            default = None
        return described, default

    # -- measurements ----------------------------------------------------------------------

    def _store(self) -> MeasurementStore:
        if self._db_path is None:
            raise FailedPrecondition("this server has no measurement store (start it with --db)")
        return MeasurementStore(self._db_path)

    def add_measurements(
        self, rows: Iterable[IncomingRow], cancel: CallCancel | None = None
    ) -> list[RowVerdict]:
        """Check every row, then commit the good ones in one transaction.

        A verdict says ``accepted`` only for a row that is committed when this returns; a call
        that fails half-way (a bad stream, a crash) commits nothing.
        """
        store = self._store()
        spending = CallSpending(self._row_budget)
        try:
            return self._add(store, rows, spending, cancel)
        finally:
            store.close()
            if spending.spent_bytes > TRIM_AFTER_BYTES:
                trim()

    def _add(
        self,
        store: MeasurementStore,
        rows: Iterable[IncomingRow],
        spending: CallSpending,
        cancel: CallCancel | None = None,
    ) -> list[RowVerdict]:
        verdicts: dict[int, RowVerdict] = {}
        good: list[IncomingRow] = []
        graphs: dict[str, bytes] = {}  # sent in this call
        keys: set[str] = set()
        stored_ok = store.done_keys()
        for n, item in enumerate(rows):
            if n >= self._max_rows:
                raise ResourceLimit(f"more than {self._max_rows} rows in one call; send batches")
            spending.spend(item)
            try:
                item = self._check_incoming(item, graphs, store, cancel)
                if item.row.run_key in keys:
                    raise InvalidArgument(
                        f"run_key {item.row.run_key!r} appears twice in this call"
                    )
                if item.row.run_key in stored_ok:
                    raise InvalidArgument(f"run_key {item.row.run_key!r} {ALREADY_STORED}")
            except Cancelled:
                raise  # nobody waits for the verdicts: the call stops, nothing is stored
            except JoulecastError as exc:
                verdicts[item.index] = RowVerdict(item.index, item.row.run_key, False, str(exc))
                continue
            keys.add(item.row.run_key)
            good.append(item)
        if good:
            with self._write_lock:
                try:
                    for sha in {i.row.graph_sha256 for i in good if i.row.graph_sha256}:
                        if sha in graphs:
                            store.put_graph(graphs[sha])
                    store.put_rows([(i.row, ()) for i in good])
                except sqlite3.IntegrityError as exc:
                    reason = f"not stored (the batch was rolled back): {exc}"
                    for i in good:
                        verdicts[i.index] = RowVerdict(i.index, i.row.run_key, False, reason)
                    good = []
            for i in good:
                verdicts[i.index] = RowVerdict(i.index, i.row.run_key, True)
        accepted = sum(v.accepted for v in verdicts.values())
        logger.info("measurements: %d accepted, %d rejected", accepted, len(verdicts) - accepted)
        return [verdicts[k] for k in sorted(verdicts)]

    def _check_incoming(
        self,
        item: IncomingRow,
        graphs: dict[str, bytes],
        store: MeasurementStore,
        cancel: CallCancel | None = None,
    ) -> IncomingRow:
        row = item.row
        if item.graph is not None:
            if len(item.graph) > self._max_row_graph_bytes:
                raise ResourceLimit(
                    f"graph of {len(item.graph)} bytes exceeds {self._max_row_graph_bytes}; "
                    "send the weightless graph (joulecast.weightless.strip_weights)"
                )
            sha = graph_sha256(item.graph)
            if row.graph_sha256 and row.graph_sha256 != sha:
                raise InvalidArgument(
                    f"graph_sha256 {row.graph_sha256} does not match the graph ({sha})"
                )
            if sha not in graphs:
                self.profile(item.graph, cancel)  # the estimator must be able to featurize it
                graphs[sha] = item.graph
            row = dataclasses.replace(row, graph_sha256=sha)
        elif (
            row.graph_sha256
            and row.graph_sha256 not in graphs
            and store.get_graph(row.graph_sha256) is None
        ):
            raise InvalidArgument(
                f"graph {row.graph_sha256} was neither sent in this call nor stored"
            )
        return IncomingRow(item.index, check_row(row), item.graph)

    def delete_measurements(self, run_keys: list[str]) -> tuple[int, list[str]]:
        """Delete stored rows by run key, all or nothing; returns (deleted, missing keys)."""
        if not run_keys:
            raise InvalidArgument("run_keys is empty: name the rows to delete")
        if len(run_keys) > self._max_rows:
            raise ResourceLimit(f"more than {self._max_rows} run keys in one call; send batches")
        if len(set(run_keys)) != len(run_keys):
            raise InvalidArgument("a run key appears twice in this call")
        for key in run_keys:
            if not key or len(key) > MAX_RUN_KEY:
                raise InvalidArgument(f"run keys are 1-{MAX_RUN_KEY} characters, got {key[:40]!r}")
        store = self._store()
        try:
            with self._write_lock:
                missing = store.delete_rows(run_keys)
        finally:
            store.close()
        deleted = len(run_keys) - len(missing)
        logger.info("measurements: %d deleted, %d not stored", deleted, len(missing))
        return deleted, missing

    # -- retrain ---------------------------------------------------------------------------

    def retrain(
        self, hardware: str, cancel: CallCancel | None = None, allow_idle_meter: bool = False
    ) -> RetrainResult:
        """Fit and publish a new predictor version of ``hardware`` from the store, then swap
        it in. One retrain at a time; predictions keep using the old version meanwhile. A fit
        in a child process (:class:`server.retrain_child.FitInChild`, what the server runs) is
        stopped when ``cancel`` is set or its deadline passes. ``allow_idle_meter`` fits GPU
        rows whose meter saw an idle board (refused otherwise: :mod:`joulecast.idle_meter`)."""
        if not hardware:
            raise InvalidArgument("hardware is empty: name the hardware to retrain")
        check_hardware_name(hardware)  # before the store is read or anything fitted
        if self._db_path is None:
            raise FailedPrecondition("this server has no measurement store (start it with --db)")
        if not self._db_path.exists():
            # a state of the server, not a fault of the call: nothing was sent yet
            raise FailedPrecondition(
                f"no measurements stored yet ({self._db_path} does not exist): send rows with "
                "AddMeasurements first"
            )
        if not self._retrain_lock.acquire(blocking=False) and not self._after_a_stopped_one():
            raise FailedPrecondition("a retrain is already running; try again when it ends")
        self._retrain_cancel = cancel
        try:
            fit = self._fit or _default_fit()
            logger.info("retraining %s from %s", hardware, self._db_path)
            try:
                if isinstance(fit, FitInChild):
                    described = fit(
                        self._db_path, hardware, self._artifacts_dir, cancel, allow_idle_meter
                    )
                else:  # an in-process fit (the local API, tests): nothing can stop it
                    allow = {"allow_idle_meter": True} if allow_idle_meter else {}
                    described = fit(self._db_path, hardware, self._artifacts_dir, **allow)
            except (Cancelled, FitStopped):
                # killed: a publish it had finished (CURRENT moved just before the kill) must
                # serve here as it would after a restart
                self._reload_after_kill(hardware)
                raise
            except JoulecastError as exc:
                retired = self._retire_if_deleted(hardware, exc)
                if retired is None:
                    raise
                return retired
            version = self._registry.reload(hardware)
            logger.info("retrained %s: version %s now serves", hardware, version)
            return RetrainResult(
                hardware=described.hardware,
                version=version or described.version,
                selected=described.selected_text(),
                scores=described.scores,
                energy_source=described.energy_source,
                energy_is_estimate=described.energy_is_estimate,
            )
        finally:
            self._retrain_cancel = None
            self._retrain_lock.release()

    def _after_a_stopped_one(self) -> bool:
        """True once the retrain holding the slot has ended, when its call had been stopped
        (waited for up to :data:`STOPPED_RETRAIN_WAIT_S`): its process is killed and the served
        version reloaded a moment after its client has its answer, and a client that gave up
        and asks again must not be told that one is running. False at once for a running one."""
        running = self._retrain_cancel
        if running is None or not running.is_set():
            return False
        return self._retrain_lock.acquire(timeout=STOPPED_RETRAIN_WAIT_S)

    def _reload_after_kill(self, hardware: str) -> None:
        try:
            self._registry.reload(hardware)
        except JoulecastError as exc:
            logger.info("after a stopped retrain, %s was not reloaded: %s", hardware, exc)

    def _retire_if_deleted(self, hardware: str, failure: JoulecastError) -> RetrainResult | None:
        """After a failed fit: when the version serving ``hardware`` rested on rows deleted
        since (all of them, or enough that no new version could be fitted), it must not go on
        answering; it is retired and the answer says so. None when nothing was deleted under
        it (the failure is then the caller's answer, and the version keeps serving)."""
        deleted_under = getattr(self._registry, "deleted_under", None)
        retire = getattr(self._registry, "retire", None)
        if deleted_under is None or retire is None or self._db_path is None:
            return None
        deleted = deleted_under(hardware, self._db_path)
        if not deleted:
            return None
        version = retire(hardware)
        reason = " ".join(str(failure).split())[:300]
        return RetrainResult(
            hardware=hardware,
            version="",
            selected=(
                f"not served any more: version {version} rested on {deleted} row(s) deleted "
                f"since, and no new version could be fitted ({reason})"
            ),
            scores={},
        )


_PHASE_NUMBERS = ("energy_j", "energy_low_j", "energy_high_j", "duration_s", "power_w")


def _require_finite(prediction: EnergyPrediction) -> None:
    """A finite question gets finite answers: a phase whose numbers left the double range (a
    run of 10^12 samples for 10^5 epochs of a huge graph) is refused with the reason, never
    answered ``inf``."""
    for phase in PHASES:
        estimate = getattr(prediction, phase, None)
        for name in _PHASE_NUMBERS:
            value = getattr(estimate, name, None)
            if value is not None and not math.isfinite(value):
                raise InvalidArgument(
                    f"the {phase} phase's {name} exceeds the range of a double (about 1.8e308);"
                    " ask with a smaller sample or epoch count"
                )


def _default_fit() -> FitFn:
    # fitting imports pandas and SciPy: only when a retrain runs, never to serve
    from estimator.publish import fit_and_publish

    return fit_and_publish
