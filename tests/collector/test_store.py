"""The SQLite measurement store: atomic rows, no duplicates, traces and graphs kept."""

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from testkit import a_row

from joulecast.errors import InvalidArgument
from joulecast.measurement import TraceSample
from joulecast.store import MeasurementStore


def test_rows_round_trip_with_trace_and_graph(tmp_path: Path) -> None:
    trace = (TraceSample(0.0, 10.0, 5.0, 1.0, 100.0), TraceSample(0.1, 60.0, 95.0, 40.0, 900.0))
    with MeasurementStore(tmp_path / "m.db") as store:
        sha = store.put_graph(b"graph-bytes")
        assert store.put_graph(b"graph-bytes") == sha  # stored once
        store.put_row(a_row(graph_sha256=sha), trace)
    with MeasurementStore(tmp_path / "m.db") as store:
        (row,) = store.rows()
        assert row == a_row(graph_sha256=sha)
        assert row.energy_is_estimate is True
        assert store.trace(row.run_key) == trace
        assert store.get_graph(sha) == b"graph-bytes"
    mode = sqlite3.connect(tmp_path / "m.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_a_batch_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    with MeasurementStore(tmp_path / "m.db") as store:
        store.put_row(a_row("k1"))
        with pytest.raises(sqlite3.IntegrityError):
            store.put_rows([(a_row("k2"), ()), (a_row("k1"), ())])  # k1 is a duplicate
        assert store.all_keys() == {"k1"}
        with pytest.raises(InvalidArgument, match="phase"):
            store.put_rows([(a_row("k3"), ()), (replace(a_row("k4"), phase="nope"), ())])
        assert store.all_keys() == {"k1"}


def test_a_failed_row_is_replaced_by_a_later_success_but_ok_rows_never_are(
    tmp_path: Path,
) -> None:
    with MeasurementStore(tmp_path / "m.db") as store:
        store.put_row(a_row("k", status="failed", error="out of memory", energy_j=None))
        assert store.done_keys() == set()
        store.put_row(a_row("k"))
        assert store.done_keys() == {"k"}
        assert store.count() == 1
        with pytest.raises(sqlite3.IntegrityError):
            store.put_row(a_row("k", energy_j=99.0))
        assert store.rows()[0].energy_j == 12.5
