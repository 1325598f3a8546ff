"""The published transfer model: one JSON file, its version the hash of its content.

``<artifacts>/transfer/gpu-training.json`` holds the fitted parameters, the interval bands
(the 5-95 % log errors of leave-one-GPU-out and leave-one-workload-out), the scores of both
schemes beside the baselines, and what it was fitted on. Loading recomputes the hash and checks
every parameter against its box: a file edited by hand, truncated or from another schema is
refused, never half-used. Publishing writes a temporary file and renames it into place, so a
reader sees the old model or the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estimator.transfer.files import (
    FOLDER,
    SCHEMA_VERSION,
    content_hash,
    read_versioned,
    write_versioned,
)
from estimator.transfer.model import clip_params, stored_params
from joulecast.errors import FailedPrecondition

FILE_NAME = "gpu-training.json"
KIND = "gpu-training-transfer"


@dataclass(frozen=True)
class TransferModel:
    """What the server needs to answer for any catalogued GPU.

    ``bands`` maps a scheme (``logo``: a GPU never measured; ``lowo``: a workload never
    measured) to its (low, high) log-error quantiles; an answer's interval is
    ``energy × exp(-high) .. energy × exp(-low)``.
    """

    params: Mapping[str, float]
    bands: Mapping[str, tuple[float, float]]
    scores: Mapping[str, Any] = field(default_factory=dict)
    fitted_on: Mapping[str, Any] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "kind": KIND,
            "params": stored_params(self.params),
            "bands": {k: [float(v[0]), float(v[1])] for k, v in sorted(self.bands.items())},
            "scores": self.scores,
            "fitted_on": self.fitted_on,
        }

    @property
    def version(self) -> str:
        return content_hash(self.content())


def checked_params(raw: Mapping[str, Any]) -> dict[str, float]:
    """Stored parameters, refused (ValueError) when one lies outside its box (one stored
    before it existed reads as its legacy value)."""
    params = clip_params(raw)
    if any(abs(params[k] - float(raw[k])) > 1e-12 * abs(params[k]) for k in raw):
        raise ValueError("a parameter lies outside its box")
    return params


def path_in(artifacts_dir: str | Path) -> Path:
    return Path(artifacts_dir) / FOLDER / FILE_NAME


def publish(model: TransferModel, artifacts_dir: str | Path) -> Path:
    """Write ``model`` atomically; returns the file's path."""
    return write_versioned(path_in(artifacts_dir), model.content())


def load(artifacts_dir: str | Path) -> TransferModel | None:
    """The published model, None when there is none; FailedPrecondition when the file is not
    a transfer model this code wrote (schema, hash or a parameter out of its box)."""
    path = path_in(artifacts_dir)
    if not path.is_file():
        return None
    try:
        body = read_versioned(path, KIND)
        params = checked_params(body["params"])
        bands = {k: (float(v[0]), float(v[1])) for k, v in body["bands"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FailedPrecondition(f"{path} is not a usable transfer model: {exc}") from exc
    return TransferModel(params, bands, body.get("scores", {}), body.get("fitted_on", {}))
