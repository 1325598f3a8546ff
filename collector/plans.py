"""Sweep plans: data files under ``collector/plans/`` (or any JSON path) expanded into runs.

A plan file holds ``defaults`` (samples, batch_size, epochs) and ``runs``; a run names a model
(``family``, ``layers``, ``hidden``, optional ``rnn_input``; optional ``block`` for a
transformer) and may override ``samples`` or ``batch_size`` with a number or a list (a list
expands into one run per value).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from collector.models import ModelConfig
from joulecast.errors import InvalidArgument, NotFound


@dataclass(frozen=True)
class RunSpec:
    """One model measured at one size; each phase and repeat of it becomes a stored row."""

    plan: str
    config: ModelConfig
    samples: int
    batch_size: int
    epochs: int

    @property
    def key(self) -> str:
        """Identity of this run within a sweep (without phase and repeat)."""
        return (
            f"{self.plan}/{self.config.config_id}/s{self.samples}/b{self.batch_size}/e{self.epochs}"
        )


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    runs: tuple[RunSpec, ...]


def available_plans() -> list[str]:
    """Names of the plans shipped with joulecast."""
    folder = resources.files("collector") / "plans"
    return sorted(
        p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json")
    )


def load_plan(name_or_path: str, samples: int | None = None, batch_size: int | None = None) -> Plan:
    """Load a shipped plan by name, or a plan file by path.

    ``samples`` and ``batch_size``, when given, replace every run's value (``--samples``).
    """
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        text = path.read_text()
    else:
        shipped = resources.files("collector") / "plans" / f"{name_or_path}.json"
        if not shipped.is_file():
            raise NotFound(
                f"unknown plan {name_or_path!r}; shipped plans: {', '.join(available_plans())}"
            )
        text = shipped.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"plan {name_or_path!r} is not valid JSON: {exc}") from exc
    return _parse(data, samples, batch_size)


def _as_list(value: object, what: str) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, int) and v > 0 for v in values):
        raise InvalidArgument(f"{what} must be a positive integer or a list of them, got {value!r}")
    return values


def _parse(data: dict, samples: int | None, batch_size: int | None) -> Plan:
    try:
        name = str(data["name"])
        defaults = data.get("defaults", {})
        raw_runs = data["runs"]
    except (KeyError, TypeError) as exc:
        raise InvalidArgument(f"plan is missing {exc}") from exc
    runs: list[RunSpec] = []
    for i, run in enumerate(raw_runs):
        try:
            config = ModelConfig(
                family=run["family"],
                layers=tuple(run["layers"]),
                hidden=tuple(run["hidden"]),
                rnn_input=run.get("rnn_input", "flat"),
                block=run.get("block", ""),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidArgument(f"plan {name!r} run {i} is missing {exc}") from exc
        sample_list = _as_list(
            samples or run.get("samples", defaults.get("samples", 1578)), "samples"
        )
        batch_list = _as_list(
            batch_size or run.get("batch_size", defaults.get("batch_size", 8)), "batch_size"
        )
        epochs = _as_list(run.get("epochs", defaults.get("epochs", 1)), "epochs")[0]
        for n in sample_list:
            for b in batch_list:
                runs.append(RunSpec(name, config, n, b, epochs))
    keys = [r.key for r in runs]
    if len(set(keys)) != len(keys):
        raise InvalidArgument(f"plan {name!r} lists the same run twice")
    return Plan(name, str(data.get("description", "")), tuple(runs))
