"""Where published predictors live, readable without loading them.

``<artifacts>/predictors/<hardware>/CURRENT`` names the served version, a folder beside it whose
``manifest.json`` describes it. This module needs the standard library only, so that listing
what is published (``joulecast hardware``) does not import numpy or XGBoost; loading a version
and checking its hashes is :mod:`estimator.artifacts`' job.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
VERSION_RE = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class PublishedSummary:
    """What a hardware's CURRENT manifest says about itself; not checked against its files."""

    hardware: str
    version: str
    energy_source: str | None
    energy_is_estimate: bool | None


def predictors_root(artifacts_dir: Path | str) -> Path:
    return Path(artifacts_dir) / "predictors"


def list_hardware(artifacts_dir: Path | str) -> list[str]:
    """Hardware names with a ``CURRENT`` version under ``artifacts_dir/predictors``."""
    root = predictors_root(artifacts_dir)
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / CURRENT).is_file()
    )


def read_summary(artifacts_dir: Path | str, hardware: str) -> PublishedSummary | None:
    """The CURRENT version of ``hardware`` and its manifest's energy source; ``None`` (logged)
    when the pointer or the manifest cannot be read. For listings: serving loads it through
    :func:`estimator.artifacts.load_current`, which refuses any mismatch."""
    hw_dir = predictors_root(artifacts_dir) / hardware
    try:
        version = (hw_dir / CURRENT).read_text(encoding="utf-8").strip()
        if not VERSION_RE.match(version):
            raise ValueError(f"CURRENT does not name a version: {version[:40]!r}")
        manifest = json.loads((hw_dir / version / MANIFEST).read_bytes())
        if not isinstance(manifest, dict):
            raise ValueError("the manifest is not an object")
    except (OSError, ValueError) as exc:
        logger.warning("published predictor %s: %s", hw_dir, exc)
        return None
    source = manifest.get("energy_source")
    estimate = manifest.get("energy_is_estimate")
    return PublishedSummary(
        hardware=hardware,
        version=version,
        energy_source=source if isinstance(source, str) else None,
        energy_is_estimate=estimate if isinstance(estimate, bool) else None,
    )
