"""`fit` (and every other command that only reads a store) opens it read-only: the store's
bytes, its mtime and its folder stay as they were, no -wal or -shm file appears even for a
moment, and a user who may not write the folder can fit from it.

Tests run as root here, which ignores permission bits: the first test watches the folder while
the fit runs instead; the second drops to an unprivileged user in a subprocess (skipped where
that cannot be done)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_harness import HARDWARE, ROOT

from collector.importer import GraphCache, Record, import_records
from estimator.layerwise.data import layer_frame
from estimator.publish import fit_and_publish
from joulecast.errors import FailedPrecondition

NOBODY = 65534


def _fingerprint(db: Path) -> tuple[str, int, list[str]]:
    return (
        hashlib.sha256(db.read_bytes()).hexdigest(),
        db.stat().st_mtime_ns,
        sorted(p.name for p in db.parent.iterdir()),
    )


class FolderWatch:
    """Every name seen in a folder, listed as fast as one thread can while a block runs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.seen.update(os.listdir(self.folder))

    def __enter__(self) -> FolderWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def store_copy(fitted, tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "m.db"
    shutil.copy2(fitted[1], db)
    yield db


def test_fit_leaves_the_store_and_its_folder_as_they_were(store_copy: Path, tmp_path) -> None:
    before = _fingerprint(store_copy)
    with FolderWatch(store_copy.parent) as watch:
        fit_and_publish(store_copy, HARDWARE, tmp_path / "artifacts")
        with pytest.raises(FailedPrecondition):  # the layer-sum data read, on its own
            layer_frame(store_copy, HARDWARE)
    assert watch.seen == {"m.db"}, watch.seen
    assert _fingerprint(store_copy) == before


def test_import_dry_run_neither_creates_nor_touches_a_store(store_copy: Path, family_graphs):
    (store_copy.parent / "g.onnx").write_bytes(family_graphs["mlp"])
    record = Record(
        "rows.csv:2",
        {"graph": "g.onnx", "phase": "test", "batch_size": "8", "samples": "64",
         "energy_j": "3.0", "energy_source": "rapl", "duration_s": "0.5", "hardware": "cpu-x"},
        store_copy.parent,
    )  # fmt: skip
    before = _fingerprint(store_copy)
    with FolderWatch(store_copy.parent) as watch:
        result = import_records([record], store_copy, dry_run=True, graphs=GraphCache())
        missing = store_copy.parent / "new.db"
        import_records([record], missing, dry_run=True, graphs=GraphCache())
    assert result.imported == 1 and not result.written
    assert watch.seen == {"m.db", "g.onnx"} and not missing.exists()
    assert _fingerprint(store_copy) == before


_AS_NOBODY = textwrap.dedent(
    """
    import os, shutil, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from estimator.publish import fit_and_publish

    db, work = Path(sys.argv[2]), Path(sys.argv[3])
    warm = work / "warm"
    warm.mkdir()
    shutil.copy2(db, warm / "m.db")
    fit_and_publish(warm / "m.db", "cpu-test", warm / "artifacts")  # every import, as root
    os.setgroups([])
    os.setgid(int(sys.argv[4]))
    os.setuid(int(sys.argv[4]))
    described = fit_and_publish(db, "cpu-test", work / "out")
    print("fitted", described.version)
    """
)


@pytest.mark.skipif(not hasattr(os, "setuid") or os.geteuid() != 0, reason="needs root to drop")
def test_a_user_who_cannot_write_the_folder_can_fit(fitted) -> None:
    work = Path(tempfile.mkdtemp(prefix="joulecast-ro-", dir="/tmp"))
    try:
        work.chmod(0o777)  # the unprivileged user writes the artifacts here
        folder = work / "ro"
        folder.mkdir()
        db = folder / "m.db"
        shutil.copy2(fitted[1], db)
        db.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        folder.chmod(0o555)
        before = _fingerprint(db)
        done = subprocess.run(
            [sys.executable, "-c", _AS_NOBODY, str(ROOT), str(db), str(work), str(NOBODY)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if done.returncode != 0 and "PermissionError" in done.stderr and "import" in done.stderr:
            pytest.skip("this interpreter cannot run unprivileged (its files are root's only)")
        assert done.returncode == 0 and "fitted" in done.stdout, done.stderr[-3000:]
        assert _fingerprint(db) == before
    finally:
        for path in (work / "ro",):
            if path.exists():
                path.chmod(0o755)
        shutil.rmtree(work, ignore_errors=True)
