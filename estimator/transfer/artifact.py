"""The published transfer model: one JSON file, its version the hash of its content.

``<artifacts>/transfer/gpu-training.json`` holds the fitted parameters, the interval bands
(the 5-95 % log errors of leave-one-GPU-out and leave-one-workload-out), the scores of both
schemes beside the baselines, and what it was fitted on. Loading recomputes the hash and checks
every parameter against its box: a file edited by hand, truncated or from another schema is
refused, never half-used. Publishing writes a temporary file and renames it into place, so a
reader sees the old model or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estimator.transfer.model import PARAMS, clip_params
from joulecast.errors import FailedPrecondition

SCHEMA_VERSION = 1
FILE_NAME = "gpu-training.json"
FOLDER = "transfer"
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
            "params": {k: float(self.params[k]) for k in PARAMS},
            "bands": {k: [float(v[0]), float(v[1])] for k, v in sorted(self.bands.items())},
            "scores": self.scores,
            "fitted_on": self.fitted_on,
        }

    @property
    def version(self) -> str:
        return content_hash(self.content())


def content_hash(content: Mapping[str, Any]) -> str:
    """The version of a JSON artifact: the first 12 hex digits of its canonical form's sha256."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def write_versioned(path: Path, content: Mapping[str, Any]) -> Path:
    """Write ``content`` with its ``version`` (:func:`content_hash`) to ``path`` atomically: a
    temporary file renamed into place, so a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**content, "version": content_hash(content)}
    text = json.dumps(body, indent=1, sort_keys=True) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an artifact is for every reader
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_versioned(path: Path, kind: str) -> dict[str, Any]:
    """The content of a file :func:`write_versioned` wrote, of schema :data:`SCHEMA_VERSION`
    and ``kind``; ValueError when it is not (another schema, or a content that does not match
    its version hash: edited by hand or truncated)."""
    body = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    version = body.pop("version", None)
    if body.get("schema") != SCHEMA_VERSION or body.get("kind") != kind:
        raise ValueError(f"schema {body.get('schema')!r}, kind {body.get('kind')!r}")
    if content_hash(body) != version:
        raise ValueError("its content does not match its version hash")
    return body


def checked_params(raw: Mapping[str, Any]) -> dict[str, float]:
    """Stored parameters, refused (ValueError) when one lies outside its box."""
    params = clip_params(raw)
    if any(abs(params[k] - float(raw[k])) > 1e-12 * abs(params[k]) for k in PARAMS):
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
