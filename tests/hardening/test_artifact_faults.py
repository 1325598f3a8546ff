"""Artifacts that must not stop a server : a manifest nested 200k deep for
one hardware, and the temporaries a killed publish leaves behind."""

from __future__ import annotations

import os
import time

from hardening_harness import HARDWARE

from estimator.artifacts import predictors_root
from estimator.service import PredictorRegistry
from server.app import default_registry


def test_a_deeply_nested_manifest_costs_only_its_hardware(fitted_copy) -> None:
    artifacts, _ = fitted_copy
    broken = predictors_root(artifacts) / "broken-hw" / "aaaaaaaaaaaa"
    broken.mkdir(parents=True)
    (broken / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    (broken.parent / "CURRENT").write_text("aaaaaaaaaaaa\n")
    registry = PredictorRegistry(artifacts)
    assert registry.hardware() == [HARDWARE]


def test_stale_publish_temporaries_are_removed_at_start(fitted_copy) -> None:
    artifacts, _ = fitted_copy
    hw_dir = predictors_root(artifacts) / HARDWARE
    stale, fresh = hw_dir / ".tmp-killed", hw_dir / ".tmp-running"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "boosted.json").write_text("{}")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    registry = default_registry(artifacts)
    assert not stale.exists() and fresh.exists()
    assert registry.hardware() == [HARDWARE]
