"""One EC-NAS-Bench run (``results.json``) and the GPU training energy derived from it.

EC-NAS-Bench (Bakhtiarifard, Igel & Selvan, 2023) trained NAS-Bench-101 networks on CIFAR-10
for 4 epochs on one NVIDIA Quadro RTX 6000 under carbontracker, which samples the GPU's power
(NVML) and the CPU packages' (RAPL) every 10 s and multiplies the mean by the window's duration.
Two kinds of window were metered:

- the whole run (``total_time``): GPU and CPU separately (``avg_power_usages:``), covering the
  training, TensorFlow's graph building and checkpoints, and three evaluation passes;
- each ``estimator.train`` call (the *training segments*: one initial step, then up to the
  intermediate evaluation, then to epoch 4): GPU + CPU together, times carbontracker's PUE of
  1.59, cumulated in ``evaluation_results[*]["energy (kWh)"]``, with start/stop timestamps.

The GPU's energy of training, the quantity stored, is derived (see :func:`derive`):

    E_train = kWh_segments * 3.6e6 / PUE - P_cpu * t_segments - P_overhead * (t_segments - t_train)

the segments' GPU + CPU energy without the PUE factor, less the CPU (its whole-run mean power,
assumed constant), less the GPU's draw while TensorFlow builds graphs and writes checkpoints
inside the segments (:data:`OVERHEAD_GPU_POWER_W`), over ``t_train``, the time spent in training
steps (NAS-Bench-101's ``training_time``). Systematic uncertainty about ±10 % (CPU power not
constant: ±6 %; overhead power ±30 W: ±5 %); carbontracker's 10-s sampling adds about 3 %
between repeats of one architecture. The naive whole-run GPU mean power times ``t_train`` is
about 28 % lower on average: the whole run holds graph building and evaluations at lower power.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from collector.import_file import MAX_JSON_BYTES, read_bytes, short
from joulecast.errors import JoulecastError

PUE = 1.59
"""carbontracker's default power usage effectiveness, multiplied into every kWh it reports."""
KWH_TO_J = 3.6e6
BATCH_SIZE = 256
"""NAS-Bench-101's batch size (``lib/config.py``), not stored in ``results.json``."""
OVERHEAD_GPU_POWER_W = 66.0
"""GPU power (W) while TensorFlow builds a graph or writes a checkpoint: the initial segments
(one step, at learning rate 0) of all 2,805 runs, GPU + CPU energy less the CPU's mean power,
pooled (65.9 W; per-run median 64.9 W, quartiles 59-71 W). Fixed here so that one row's value
never depends on which other runs were imported; the importer reports the pooled figure of what
it read."""
BOARD_POWER_LIMIT_W = 260.0
"""The Quadro RTX 6000's board power limit."""
POWER_TOLERANCE = 0.05
"""NVML's stated power accuracy (±5 %): a derived power above limit x (1 + this) is impossible."""
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class RunError(ValueError):
    """A ``results.json`` lacks a field or holds a value this reader cannot use."""


@dataclass(frozen=True)
class Segment:
    """One metered ``estimator.train`` call: its cumulative GPU+CPU energy (kWh, with PUE) at
    its end, start/stop (1-s resolution), and the cumulative training state at its end."""

    epochs: float
    cumulative_kwh: float
    started_at: str
    stopped_at: str
    training_time_s: float
    training_steps: int

    @property
    def duration_s(self) -> float:
        start = datetime.strptime(self.started_at, _TIME_FORMAT)
        stop = datetime.strptime(self.stopped_at, _TIME_FORMAT)
        return (stop - start).total_seconds()


@dataclass(frozen=True)
class Run:
    """What one ``results.json`` says (powers in W, energies in J unless named kWh)."""

    trainable_params: int
    total_time_s: float
    total_kwh: float
    gpu_power_w: float
    gpu_energy_j: float
    gpu_devices: tuple[str, ...]
    cpu_power_w: float
    cpu_energy_j: float
    started_at: str
    stopped_at: str
    segments: tuple[Segment, ...]

    @property
    def last(self) -> Segment:
        return self.segments[-1]


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RunError(f"{what} is not a finite number: {value!r}")
    return float(value)


def _device_sum(block: object, key: str, what: str) -> float:
    """Sum over the devices of carbontracker's ``[[v1, v2, ...]]`` for one epoch."""
    try:
        values = block[key]  # type: ignore[index]
        epoch = values[0]
    except (KeyError, IndexError, TypeError):
        raise RunError(f"{what} has no {key!r}") from None
    if len(values) != 1 or not isinstance(epoch, list) or not epoch:
        raise RunError(f"{what} {key!r} is not one epoch of per-device values")
    return sum(_number(v, f"{what} {key}") for v in epoch)


def parse_run(data: object) -> Run:
    """A :class:`Run` from the parsed JSON of one ``results.json``; RunError says what is wrong."""
    if not isinstance(data, dict):
        raise RunError("results.json does not hold an object")
    try:
        usages = data["avg_power_usages:"]
        gpu, cpu = usages["gpu"], usages["cpu"]
        results = data["evaluation_results"]
        segments = tuple(
            sorted(
                (
                    Segment(
                        epochs=_number(r["epochs"], "epochs"),
                        cumulative_kwh=_number(r["energy (kWh)"], "energy (kWh)"),
                        started_at=str(r["start_emission"]),
                        stopped_at=str(r["stop_emission"]),
                        training_time_s=_number(r["training_time"], "training_time"),
                        training_steps=int(_number(r["training_steps"], "training_steps")),
                    )
                    for r in results
                ),
                key=lambda s: s.epochs,
            )
        )
        run = Run(
            trainable_params=int(_number(data["trainable_params"], "trainable_params")),
            total_time_s=_number(data["total_time"], "total_time"),
            total_kwh=_number(data["total_energy (kWh)"], "total_energy (kWh)"),
            gpu_power_w=_device_sum(gpu, "avg_power_usages (W)", "gpu"),
            gpu_energy_j=_device_sum(gpu, "avg_energy_usages (J)", "gpu"),
            gpu_devices=tuple(str(d).strip() for d in gpu.get("devices", ())),
            cpu_power_w=_device_sum(cpu, "avg_power_usages (W)", "cpu"),
            cpu_energy_j=_device_sum(cpu, "avg_energy_usages (J)", "cpu"),
            started_at=str(data["start_emission"]),
            stopped_at=str(data["stop_emission"]),
            segments=segments,
        )
        for s in segments:
            s.duration_s  # noqa: B018 - parses both timestamps
    except KeyError as exc:
        raise RunError(f"missing field {exc.args[0]!r}") from None
    except (TypeError, AttributeError) as exc:
        raise RunError(f"unexpected structure: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, RunError):
            raise
        raise RunError(f"bad timestamp: {exc}") from None
    if len(run.gpu_devices) != 1:
        raise RunError(f"expected one GPU, found {list(run.gpu_devices) or 'none'}")
    if len(segments) < 2 or segments[0].training_steps != 0:
        raise RunError("evaluation_results must start at step 0 and hold a later evaluation")
    return run


def read_run(path: str | Path) -> Run:
    """Parse one ``results.json`` file."""
    try:
        data = json.loads(read_bytes(Path(path), MAX_JSON_BYTES, "results file").decode())
    except (OSError, UnicodeDecodeError, JoulecastError) as exc:
        raise RunError(f"cannot read: {short(exc)}") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"not JSON: {exc.msg}") from None
    return parse_run(data)


@dataclass(frozen=True)
class Derivation:
    """The GPU's energy of training one run, how it was obtained, and whether it is usable.

    Energies in J, powers in W, times in s. ``unreliable`` is None for a usable row, else the
    reason it is dropped (the rule of :func:`derive`).
    """

    energy_j: float
    train_time_s: float
    epochs: int
    steps: int
    segments_s: float
    overhead_s: float
    segments_gpu_cpu_j: float
    step_power_w: float
    outside_gpu_power_w: float
    whole_run_gpu_power_w: float
    unreliable: str | None

    @property
    def samples_per_epoch(self) -> int:
        return self.steps * BATCH_SIZE // self.epochs

    @property
    def naive_energy_j(self) -> float:
        """Whole-run mean GPU power x training time (the simple reading, biased low)."""
        return self.whole_run_gpu_power_w * self.train_time_s

    def notes(self) -> str:
        """One line for the row's notes: definition, inputs and uncertainty."""
        return (
            f"GPU training energy derived from carbontracker (NVML GPU, RAPL CPU, PUE {PUE} "
            f"removed): training segments' GPU+CPU {self.segments_gpu_cpu_j:.0f} J over "
            f"{self.segments_s:.0f} s, less CPU at its run mean, less "
            f"{OVERHEAD_GPU_POWER_W:.0f} W GPU over {self.overhead_s:.1f} s of graph building and "
            f"checkpoints; {self.train_time_s:.1f} s in training steps at "
            f"{self.step_power_w:.0f} W (whole-run GPU mean {self.whole_run_gpu_power_w:.0f} W); "
            "systematic uncertainty ~±10 % (docs/IMPORT.md)"
        )


def derive(run: Run) -> Derivation:
    """The GPU energy of ``run``'s training steps (module docstring) and its reliability.

    A run is *unreliable* (dropped) when its derivation contradicts physics or itself: the
    training steps fall outside the metered segments (overhead < 0), or a GPU power it implies
    (in the training steps, or outside the segments) is below 0 W or above the board limit plus
    NVML's tolerance, or the training steps draw less than the overhead power.
    """
    last = run.last
    if last.epochs <= 0 or last.epochs != int(last.epochs):
        raise RunError(f"last evaluation at {last.epochs} epochs: a whole number > 0 is needed")
    epochs = int(last.epochs)
    if last.training_steps <= 0 or last.training_time_s <= 0:
        raise RunError("the last evaluation has no training steps or time")
    if (last.training_steps * BATCH_SIZE) % epochs:
        raise RunError(f"{last.training_steps} steps do not split into {epochs} equal epochs")
    segments_s = sum(s.duration_s for s in run.segments)
    segments_j = last.cumulative_kwh * KWH_TO_J / PUE
    gpu_segments_j = segments_j - run.cpu_power_w * segments_s
    overhead_s = segments_s - last.training_time_s
    energy_j = gpu_segments_j - OVERHEAD_GPU_POWER_W * overhead_s
    step_w = energy_j / last.training_time_s
    outside_s = run.total_time_s - segments_s
    outside_w = (run.gpu_energy_j - gpu_segments_j) / outside_s if outside_s > 0 else math.nan
    ceiling = BOARD_POWER_LIMIT_W * (1.0 + POWER_TOLERANCE)
    why = None
    if overhead_s < 0:
        why = f"training time {last.training_time_s:.1f} s exceeds the segments' {segments_s:.0f} s"
    elif not OVERHEAD_GPU_POWER_W <= step_w <= ceiling:
        why = (
            f"derived training power {step_w:.0f} W is outside {OVERHEAD_GPU_POWER_W:.0f}-"
            f"{ceiling:.0f} W"
        )
    elif not 0.0 <= outside_w <= ceiling:
        why = (
            f"implied GPU power outside the training segments {outside_w:.0f} W is outside "
            f"0-{ceiling:.0f} W (the run and segment meters disagree)"
        )
    return Derivation(
        energy_j=energy_j,
        train_time_s=last.training_time_s,
        epochs=epochs,
        steps=last.training_steps,
        segments_s=segments_s,
        overhead_s=overhead_s,
        segments_gpu_cpu_j=segments_j,
        step_power_w=step_w,
        outside_gpu_power_w=outside_w,
        whole_run_gpu_power_w=run.gpu_power_w,
        unreliable=why,
    )


def overhead_power_w(runs: list[Run]) -> float | None:
    """GPU power during the initial one-step segments, pooled over ``runs`` (W): the figure
    behind :data:`OVERHEAD_GPU_POWER_W`, recomputed on what was read. None without runs."""
    energy = 0.0
    seconds = 0.0
    for run in runs:
        first = run.segments[0]
        energy += first.cumulative_kwh * KWH_TO_J / PUE - run.cpu_power_w * first.duration_s
        seconds += first.duration_s
    return energy / seconds if seconds > 0 else None
