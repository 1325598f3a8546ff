"""The serial executor: every run measured in this process, repeats interleaved.

Repeat 0 of every configuration, then repeat 1 of every configuration, ..., so that slow drifts
of the machine's load show up as spread between repeats rather than as a bias of one
configuration. The store is written row by row, so a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from collector.data import Clip
from collector.flops import Cost
from collector.meters.base import EnergyMeter
from collector.plans import RunSpec
from collector.runner import (
    Progress,
    RunContext,
    SweepOptions,
    SweepSummary,
    measure_run,
    plan_keys,
    refuse_a_gpu_it_is_not,
    refuse_another_machine,
    refuse_without_resume,
    stored_windows,
    sweep_dataset,
)
from joulecast.errors import FailedPrecondition
from joulecast.store import MeasurementStore


def run_serial(
    runs: Sequence[RunSpec],
    clips: Sequence[Clip],
    store: MeasurementStore,
    meter: EnergyMeter,
    options: SweepOptions,
    progress: Progress | None = None,
) -> SweepSummary:
    """Measure every (run, phase, repeat) not already stored, in this process. Returns what
    happened.

    Without ``resume``, a store that already holds rows of this sweep is refused (no silent
    mixing); with it, finished rows are skipped and failed ones are tried again.
    """
    progress = progress or Progress()
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FailedPrecondition("--device cuda asked, but torch sees no CUDA device")
    keys = plan_keys(runs, options)
    refuse_without_resume(store, len(store.all_keys() & set(keys)), options)
    refuse_a_gpu_it_is_not(options, meter)
    refuse_another_machine(store, options, meter)
    done = store.done_keys()
    summary = SweepSummary(skipped=len(done & set(keys)))
    todo = [spec for spec in runs if any(k not in done for k in plan_keys([spec], options))]
    progress.sweep_started(len(keys) - summary.skipped)
    if not todo:
        return summary
    dataset = sweep_dataset(todo, clips, options.features)
    costs: dict[str, tuple[Cost, str | None]] = {}
    windows = stored_windows(store) if options.window_s else {}
    summary.hardware.add(options.hardware)
    lasted: dict[int, float] = {}
    for repeat in range(options.repeats):  # interleaved: repeat r of every run, then r + 1
        for index, spec in enumerate(todo):
            # A run the deadline would cut is not started: a budget is a promise about when
            # the command ends, and a run (two windows and its set-up) can last many seconds.
            # Its length is guessed from its previous repeat (a first repeat is started).
            expected = lasted.get(index, 0.0)
            if options.stop_at is not None and time.monotonic() + expected >= options.stop_at:
                summary.stopped = True
                return summary
            began = time.monotonic()
            context = RunContext(store, meter, options, device, done, costs, windows)
            measure_run(spec, repeat, dataset, context, summary, progress)
            lasted[index] = time.monotonic() - began
    return summary
