"""The transfer model's files as JSON, apart from the model: hashed, written atomically, read
back checked, and listed without numpy.

``<artifacts>/transfer/gpu-training.json`` (the transfer model) and
``<artifacts>/transfer/calibrated/<hardware>.json`` (a GPU's calibration) are written by
:func:`write_versioned` and read by :func:`read_versioned`. Listing what is calibrated
(:func:`calibrated_summaries`) imports nothing but the standard library, so that
``joulecast hardware`` stays as light as the predictors' manifests keep it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FOLDER = "transfer"
CALIBRATED_FOLDER = "calibrated"
CALIBRATED_KIND = "gpu-calibrated-transfer"
CALIBRATED_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
"""A calibration's hardware id, its file's name (``<artifacts>/transfer/calibrated/ID.json``)."""


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


def calibrated_folder(artifacts_dir: str | Path) -> Path:
    return Path(artifacts_dir) / FOLDER / CALIBRATED_FOLDER


@dataclass(frozen=True)
class CalibratedSummary:
    """What a calibration file says of itself: the hardware id its answers are asked by, the
    catalog id of its GPU, its version and how many measured rows it rests on."""

    hardware: str
    gpu: str
    version: str
    rows: int


def calibrated_summaries(artifacts_dir: str | Path) -> list[CalibratedSummary]:
    """Every readable calibration under ``artifacts_dir``, by hardware id; a file that is not
    one (edited, truncated, another schema) is left out with a warning (loading it for an
    answer refuses it with the reason)."""
    root = calibrated_folder(artifacts_dir)
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob("*.json")):
        if not CALIBRATED_NAME.match(path.stem):
            continue
        try:
            body = read_versioned(path, CALIBRATED_KIND)
            rows = int(body.get("calibration", {}).get("rows", 0))
            found.append(
                CalibratedSummary(str(body["hardware"]), str(body["gpu"]), content_hash(body), rows)
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s is not a usable calibration, left out: %s", path, exc)
    return found
