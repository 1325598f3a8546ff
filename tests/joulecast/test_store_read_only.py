"""Commands that only read a store leave it untouched: same bytes, same mtime, no side files."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import a_row

from joulecast.errors import InvalidArgument
from joulecast.store import MeasurementStore

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "artifacts" / "measurements" / "cpu-amd-epyc.db"
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"


def _fingerprint(path: Path) -> tuple[str, int, list[str]]:
    """The file's hash, its mtime in ns, and what lies next to it."""
    return (
        hashlib.sha256(path.read_bytes()).hexdigest(),
        path.stat().st_mtime_ns,
        sorted(p.name for p in path.parent.iterdir()),
    )


def _cli(*argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "joulecast.cli", *argv],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_export_and_a_server_without_db_leave_the_shipped_store_untouched(tmp_path: Path) -> None:
    before = _fingerprint(SHIPPED)
    _cli("export", "--db", str(SHIPPED), "--out", str(tmp_path / "rows.csv"))
    assert (tmp_path / "rows.csv").stat().st_size > 0
    server = subprocess.Popen(
        [sys.executable, "-m", "joulecast.cli", "serve", "--port", "0"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        address = server.stdout.readline().split()[-1]
        _cli("predict", str(SAMPLE), "--server", address, "--json")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert _fingerprint(SHIPPED) == before


@pytest.mark.slow
def test_fit_and_report_leave_the_shipped_store_untouched(tmp_path: Path) -> None:
    before = _fingerprint(SHIPPED)
    _cli("fit", "--db", str(SHIPPED), "--out", str(tmp_path / "artifacts"), "--json")
    _cli("report", "--db", str(SHIPPED), "--out", str(tmp_path / "report"))
    assert (tmp_path / "report" / "REPORT.md").is_file()
    assert _fingerprint(SHIPPED) == before


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[Path]:
    """The shipped store in a folder without write permission (root ignores the permission,
    so the test also checks that no file appears next to the store)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / SHIPPED.name
    shutil.copy2(SHIPPED, db)
    db.chmod(stat.S_IRUSR | stat.S_IRGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield db
    finally:
        folder.chmod(stat.S_IRWXU)
        db.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_export_reads_a_store_in_a_read_only_folder(read_only_copy: Path, tmp_path: Path) -> None:
    before = _fingerprint(read_only_copy)
    with sqlite3.connect(f"file:{read_only_copy}?mode=ro&immutable=1", uri=True) as raw:
        (rows,) = raw.execute("SELECT COUNT(*) FROM measurements").fetchone()
    assert rows > 100
    done = _cli("export", "--db", str(read_only_copy), "--out", str(tmp_path / "rows.csv"))
    assert f"wrote {rows} rows" in done.stdout
    assert _fingerprint(read_only_copy) == before
    with MeasurementStore(read_only_copy, read_only=True) as store:
        assert store.count() == rows
        with pytest.raises(InvalidArgument, match="read-only"):
            store.put_graph(b"x")


def test_read_only_sees_commits_still_in_the_wal(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with MeasurementStore(db) as writer:
        writer.put_row(a_row("a"))
        # The writer is still open: its commit sits in live.db-wal, not yet in live.db.
        assert (tmp_path / "live.db-wal").stat().st_size > 0
        with MeasurementStore(db, read_only=True) as reader:
            assert [r.run_key for r in reader.rows()] == ["a"]


def test_read_only_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no measurement store"):
        MeasurementStore(tmp_path / "missing.db", read_only=True)
    (tmp_path / "text.db").write_text("not sqlite at all, just some text " * 10)
    with pytest.raises(InvalidArgument, match="not a measurement store"):
        MeasurementStore(tmp_path / "text.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()
