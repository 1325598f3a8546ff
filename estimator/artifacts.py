"""Predictor artifacts: ``<artifacts>/predictors/<hardware>/<version>/`` plus a ``CURRENT`` pointer.

A version folder holds ``manifest.json`` and the model files (JSON, XGBoost's JSON; never pickle).
The manifest lists every file with its sha256; the version id is a short hash of the manifest's
content (files included, creation time excluded), so refitting identical data yields the same id.

Publishing is atomic: the folder is written under a temporary name and renamed into place, then
``CURRENT`` is replaced with ``os.replace``. A reader sees the old version or the new one, never
half of one. Loading checks the schema and every file's hash, and refuses anything else. The
layout itself, and a reader for listings that loads no predictor, are in ``estimator.published``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from estimator.features import LOG_FEATURES, PROFILE_FEATURES, RUN_FEATURES
from estimator.layerwise import LayerSum
from estimator.predictors import PREDICTORS, ArtifactFormatError, Predictor
from estimator.predictors.carried import Carried
from estimator.published import CURRENT, MANIFEST, VERSION_RE, predictors_root
from estimator.published import list_hardware as list_hardware
from estimator.training import Bundle
from joulecast import hardware_name
from joulecast.errors import FailedPrecondition, InvalidArgument, NotFound

LOADABLE: dict[str, type[Predictor]] = {**PREDICTORS, Carried.name: Carried}
"""Every predictor a published version may hold: the fitted ones, and ``carried`` (built by a
CPU's few-shot calibration, never fitted on rows alone)."""
logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
RETIRED = "RETIRED"
"""What ``CURRENT`` becomes when a hardware stops being served (:func:`retire`)."""
_VERSION_RE = VERSION_RE
_UNHASHED = ("version", "created_at", "fitted_from")
"""Manifest keys outside the version's content hash: when and from which store it was fitted
say nothing about what it predicts."""
_LIBRARIES = ("numpy", "scipy", "pandas", "xgboost", "onnx")


class ArtifactError(FailedPrecondition):
    """A predictor artifact is missing, malformed, of another schema, or does not match its hashes."""


@dataclass(frozen=True, eq=False)
class Published:
    """One loaded (or just written) predictor version."""

    version: str
    created_at: str
    bundle: Bundle
    manifest: dict[str, Any]


def check_hardware_name(hardware: str) -> str:
    """A hardware name safe to use as one path component (the ground's one rule)."""
    return hardware_name.check_hardware_name(hardware)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            try:
                versions[name] = metadata.version(f"{name}-cpu")
            except metadata.PackageNotFoundError:
                versions[name] = "absent"
    return versions


def build_manifest(bundle: Bundle) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest (with ``version``) and the files of ``bundle``."""
    files: dict[str, bytes] = {}
    owners: dict[str, list[str]] = {}
    for name, model in bundle.predictors.items():
        produced = model.to_files()
        owners[name] = sorted(produced)
        files.update(produced)
    layer_sum: dict[str, Any] | None = None
    if bundle.layer_sum is not None:
        produced = bundle.layer_sum.to_files()
        files.update(produced)
        layer_sum = {**bundle.layer_sum_info, "files": sorted(produced)}
    content = {
        "schema_version": SCHEMA_VERSION,
        "hardware": bundle.hardware,
        "energy_source": bundle.energy_source,
        "energy_is_estimate": bundle.energy_is_estimate,
        "target": "energy_j per sample per epoch",
        "features": {
            "profile": list(PROFILE_FEATURES),
            "run": list(RUN_FEATURES),
            "model_inputs": list(LOG_FEATURES),
        },
        "library_versions": _library_versions(),
        "dataset": bundle.dataset,
        "phases": list(bundle.phases),
        "domain": dict(bundle.domain),
        "families": {p: list(f) for p, f in bundle.families.items()},
        "selected": dict(bundle.selected),
        "fallback_unseen_family": dict(bundle.fallback),
        "interval": {
            "level": 0.9,
            "method": "split-conformal on leave-one-configuration-out log residuals",
            "q_log": {p: dict(v) for p, v in bundle.q_log.items()},
            "q_log_unseen_family": dict(bundle.q_log_unseen),
        },
        "scores": bundle.scores,
        "notes": list(bundle.notes),
        "predictors": owners,
        "files": {name: _sha256(data) for name, data in sorted(files.items())},
    }
    if layer_sum is not None:
        content["layer_sum"] = layer_sum
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    version = _sha256(canonical.encode())[:12]
    manifest = {
        **content,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "fitted_from": dict(bundle.source),
    }
    return manifest, files


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(
    bundle: Bundle,
    artifacts_dir: Path | str,
    check: Callable[[Published], None] | None = None,
) -> Published:
    """Write ``bundle`` as a new version and point ``CURRENT`` at it, atomically.

    ``check`` (e.g. :func:`estimator.canary.require_servable`) is given the written version
    before ``CURRENT`` moves; when it raises, the version stays aside and CURRENT is unchanged.
    """
    hardware = check_hardware_name(bundle.hardware)
    hw_dir = predictors_root(artifacts_dir) / hardware
    hw_dir.mkdir(parents=True, exist_ok=True)
    manifest, files = build_manifest(bundle)
    version = manifest["version"]
    target = hw_dir / version
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=hw_dir))
    try:
        for name, data in files.items():
            _write(tmp / name, data)
        _write(tmp / MANIFEST, json.dumps(manifest, indent=1, allow_nan=False).encode())
        _fsync_dir(tmp)
        if target.exists():
            try:
                load_version(artifacts_dir, hardware, version)
                shutil.rmtree(tmp)
                logger.info("version %s of %s already published", version, hardware)
            except ArtifactError:
                trash = hw_dir / f".trash-{uuid.uuid4().hex}"
                os.rename(target, trash)
                os.rename(tmp, target)
                shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, target)
        _fsync_dir(hw_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if check is not None:
        check(load_version(artifacts_dir, hardware, version))
    pointer = hw_dir / f".{CURRENT}-{uuid.uuid4().hex}"
    _write(pointer, f"{version}\n".encode())
    os.replace(pointer, hw_dir / CURRENT)
    (hw_dir / RETIRED).unlink(missing_ok=True)
    _fsync_dir(hw_dir)
    return load_version(artifacts_dir, hardware, version)


def retire(artifacts_dir: Path | str, hardware: str) -> str:
    """Stop publishing ``hardware``: its ``CURRENT`` pointer is renamed ``RETIRED`` in one
    step, so that no server loads it any more (a restart included); the versions stay in their
    folders, and the next publish points ``CURRENT`` at a new one. Returns the version that was
    current (NotFound when none was)."""
    hw_dir = predictors_root(artifacts_dir) / check_hardware_name(hardware)
    version = current_version(artifacts_dir, hardware)
    os.replace(hw_dir / CURRENT, hw_dir / RETIRED)
    _fsync_dir(hw_dir)
    return version


STALE_AFTER_S = 600.0


def remove_stale_temporaries(artifacts_dir: Path | str, older_than_s: float = STALE_AFTER_S) -> int:
    """Remove ``.tmp-*``, ``.trash-*`` and ``.CURRENT-*`` left by a publish that was killed
    (older than ``older_than_s``, so that a publish running now keeps its own); returns how
    many were removed."""
    root = predictors_root(artifacts_dir)
    if not root.is_dir():
        return 0
    now = time.time()
    removed = 0
    for hw_dir in root.iterdir():
        if not hw_dir.is_dir() or hw_dir.is_symlink():
            continue
        for item in hw_dir.iterdir():
            if not item.name.startswith((".tmp-", ".trash-", f".{CURRENT}-")):
                continue
            try:
                if now - item.lstat().st_mtime < older_than_s:
                    continue
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item)
                else:
                    item.unlink()
            except OSError as exc:
                logger.warning("cannot remove %s: %s", item, exc)
                continue
            logger.info("removed stale %s", item)
            removed += 1
    return removed


def current_version(artifacts_dir: Path | str, hardware: str) -> str:
    path = predictors_root(artifacts_dir) / check_hardware_name(hardware) / CURRENT
    try:
        version = path.read_text().strip()
    except FileNotFoundError as exc:
        raise NotFound(f"no published predictor for hardware {hardware!r}") from exc
    if not VERSION_RE.match(version):
        raise ArtifactError(f"{path} does not name a version: {version[:40]!r}")
    return version


def load_current(artifacts_dir: Path | str, hardware: str) -> Published:
    return load_version(artifacts_dir, hardware, current_version(artifacts_dir, hardware))


def load_version(artifacts_dir: Path | str, hardware: str, version: str) -> Published:
    """Load one version, refusing any mismatch between its manifest and its files."""
    check_hardware_name(hardware)
    if not VERSION_RE.match(version):
        raise InvalidArgument(f"bad predictor version {version!r}")
    folder = predictors_root(artifacts_dir) / hardware / version
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes())
    except FileNotFoundError as exc:
        raise ArtifactError(f"{folder}: no {MANIFEST}") from exc
    except ValueError as exc:
        raise ArtifactError(f"{folder}/{MANIFEST} is not JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("schema_version") != SCHEMA_VERSION:
        found = manifest.get("schema_version") if isinstance(manifest, dict) else None
        raise ArtifactError(
            f"{folder}: manifest schema {found!r}; this joulecast reads {SCHEMA_VERSION}"
        )
    try:
        return _from_manifest(folder, manifest, hardware, version)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{folder}: malformed manifest: {exc!r}") from exc


def _from_manifest(
    folder: Path, manifest: dict[str, Any], hardware: str, version: str
) -> Published:
    if manifest["hardware"] != hardware or manifest["version"] != version:
        raise ArtifactError(
            f"{folder}: manifest is for {manifest['hardware']}/{manifest['version']}"
        )
    listed: dict[str, str] = manifest["files"]
    present = {p.name for p in folder.iterdir()} - {MANIFEST}
    if present != set(listed):
        raise ArtifactError(
            f"{folder}: files {sorted(present)} do not match the manifest's {sorted(listed)}"
        )
    files: dict[str, bytes] = {}
    for name, digest in listed.items():
        data = (folder / name).read_bytes()
        if _sha256(data) != digest:
            raise ArtifactError(f"{folder}/{name}: sha256 does not match the manifest; refused")
        files[name] = data
    content = {k: v for k, v in manifest.items() if k not in _UNHASHED}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if _sha256(canonical.encode())[:12] != version:
        raise ArtifactError(f"{folder}: manifest content does not hash to version {version}")
    predictors: dict[str, Predictor] = {}
    for name, owned in manifest["predictors"].items():
        if name not in LOADABLE:
            raise ArtifactError(f"{folder}: unknown predictor {name!r}")
        try:
            predictors[name] = LOADABLE[name].from_files({f: files[f] for f in owned})
        except ArtifactFormatError as exc:
            raise ArtifactError(f"{folder}: {exc}") from exc
    layer_sum = None
    if "layer_sum" in manifest:
        listed_layer = manifest["layer_sum"]["files"]
        try:
            layer_sum = LayerSum.from_files({f: files[f] for f in listed_layer})
        except FailedPrecondition as exc:
            raise ArtifactError(f"{folder}: {exc}") from exc
    interval = manifest["interval"]
    phases = tuple(manifest["phases"])
    for phase in phases:
        for key in (manifest["selected"][phase], manifest["fallback_unseen_family"][phase]):
            if key not in predictors:
                raise ArtifactError(f"{folder}: selected predictor {key!r} has no model")
    bundle = Bundle(
        hardware=hardware,
        energy_source=str(manifest["energy_source"]),
        energy_is_estimate=bool(manifest["energy_is_estimate"]),
        dataset_sha256=str(manifest["dataset"]["sha256"]),
        predictors=predictors,
        phases=phases,
        families={p: tuple(f) for p, f in manifest["families"].items()},
        selected=dict(manifest["selected"]),
        fallback=dict(manifest["fallback_unseen_family"]),
        q_log={p: {k: float(v) for k, v in d.items()} for p, d in interval["q_log"].items()},
        q_log_unseen={p: float(v) for p, v in interval["q_log_unseen_family"].items()},
        scores=manifest["scores"],
        notes=tuple(manifest["notes"]),
        dataset=manifest["dataset"],
        layer_sum=layer_sum,
        layer_sum_info={k: v for k, v in manifest.get("layer_sum", {}).items() if k != "files"},
        source=fitted if isinstance(fitted := manifest.get("fitted_from"), dict) else {},
        domain=manifest.get("domain", {}),
    )
    return Published(version, str(manifest["created_at"]), bundle, manifest)
