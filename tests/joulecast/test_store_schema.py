"""The store's schema version: an older store is migrated in place by a writer and read as it
is by a reader; a newer one is refused. The schema-1 file was written by the code before the
migration existed (tests/data/stores/README.md)."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
from testkit import a_row

from joulecast.errors import InvalidArgument
from joulecast.measurement import check_row
from joulecast.store import SCHEMA_VERSION, MeasurementStore

V1 = Path(__file__).resolve().parents[1] / "data" / "stores" / "store-v1.db"


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def _columns(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[1] for r in db.execute("PRAGMA table_info(measurements)")}
    finally:
        db.close()


@pytest.fixture
def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "old.db"
    shutil.copyfile(V1, path)
    assert _version(path) == 1 and "power_limit_w" not in _columns(path)
    return path


def test_a_new_store_has_the_current_schema(tmp_path: Path) -> None:
    with MeasurementStore(tmp_path / "new.db") as store:
        store.put_row(a_row("k", power_limit_w=150.0))
        assert store.rows()[0].power_limit_w == 150.0
    assert _version(tmp_path / "new.db") == SCHEMA_VERSION == 4


def test_a_writer_migrates_a_schema_1_store_in_place_and_keeps_its_rows(v1_copy: Path) -> None:
    with MeasurementStore(v1_copy) as store:
        rows = store.rows(status=None)
        assert [r.run_key for r in rows] == ["v1/ok/train", "v1/failed/test"]
        assert all(r.power_limit_w is None for r in rows)
        ok = rows[0]
        assert ok.device_name == "Tesla T4" and ok.energy_j == 12.5 and ok.params == 64 * 32 + 32
        assert [s.power_w for s in store.trace(ok.run_key)] == [10.0, 15.0]
        assert ok.graph_sha256 is not None and store.get_graph(ok.graph_sha256)
        store.put_row(a_row("v2/limited", power_limit_w=175.0))
    assert _version(v1_copy) == SCHEMA_VERSION
    assert "power_limit_w" in _columns(v1_copy)
    with MeasurementStore(v1_copy) as store:  # a second open finds nothing to migrate
        assert store.count() == 3
        assert store.rows(hardware="cpu-x")[-1].power_limit_w == 175.0


def test_a_reader_reads_a_schema_1_store_without_changing_it(v1_copy: Path) -> None:
    before = v1_copy.read_bytes()
    with MeasurementStore(v1_copy, read_only=True) as store:
        (row,) = store.rows()
        assert row.run_key == "v1/ok/train" and row.power_limit_w is None
    assert v1_copy.read_bytes() == before and _version(v1_copy) == 1


def test_a_store_of_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    MeasurementStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    for read_only in (False, True):
        with pytest.raises(InvalidArgument, match=f"schema {SCHEMA_VERSION + 1}"):
            MeasurementStore(path, read_only=read_only)


@pytest.mark.parametrize("limit", [0.0, -100.0, float("nan"), float("inf"), 1e6])
def test_check_row_refuses_a_power_limit_that_no_gpu_runs_under(limit: float) -> None:
    with pytest.raises(InvalidArgument, match="power_limit_w"):
        check_row(a_row(power_limit_w=limit), require_graph=False)
    assert check_row(a_row(power_limit_w=250.0), require_graph=False).power_limit_w == 250.0
    assert (
        check_row(replace(a_row(), power_limit_w=None), require_graph=False).power_limit_w is None
    )


SHIPPED = Path(__file__).resolve().parents[2] / "artifacts" / "measurements"
SIDE_FACTS = ("cpu_s", "others_busy_cores", "gpu_other_processes")


def _raw_rows(path: Path) -> list[dict[str, object]]:
    """Every column of every row, read with sqlite3 alone (no joulecast in between)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM measurements ORDER BY id")]
    finally:
        db.close()


def _side_fact_in_notes(notes: object, name: str) -> float | None:
    """The figure an older meter wrote as ``name=N`` (or ``name>=N``) into the notes."""
    for part in str(notes or "").split("; "):
        key, _, value = part.partition("=")
        if key.rstrip(">") == name and value:
            return float(value.split()[0])
    return None


@pytest.mark.parametrize("name", ["cpu-amd-epyc.db", "h200.db", "cpu-epyc-f26m2.db"])
def test_a_shipped_store_migrates_in_place_and_keeps_every_row_and_value(
    name: str, tmp_path: Path
) -> None:
    """A copy of a store this release ships (schema 1 to 3): every row stays, every stored
    value stays equal, the side facts older meters wrote into the notes become columns, and
    the precision nobody recorded stays unknown."""
    copy = tmp_path / name
    shutil.copyfile(SHIPPED / name, copy)
    old_version = _version(copy)
    assert old_version < SCHEMA_VERSION
    before = _raw_rows(copy)
    with MeasurementStore(copy, read_only=True) as store:
        read_before = store.rows(status=None)
    assert _version(copy) == old_version  # a reader migrates in memory only

    with MeasurementStore(copy) as store:
        migrated = store.rows(status=None)
    assert _version(copy) == SCHEMA_VERSION
    after = _raw_rows(copy)
    assert len(after) == len(before) > 0
    for old, new in zip(before, after, strict=True):
        assert {k: new[k] for k in old} == old  # every old column, value for value (notes too)
        for fact in SIDE_FACTS:
            assert new[fact] == _side_fact_in_notes(old["notes"], fact), (old["notes"], fact)
        assert new["precision"] is None
    assert migrated == read_before  # what a reader sees before equals the migrated rows
    recorded = {f: sum(r[f] is not None for r in after) for f in SIDE_FACTS}
    if name.startswith("cpu-"):
        assert recorded["cpu_s"] == len(after)
    if name == "cpu-epyc-f26m2.db":
        assert recorded["others_busy_cores"] == len(after)
    if name == "h200.db":
        assert recorded["gpu_other_processes"] == len(after)


def test_a_new_row_keeps_its_side_facts_in_columns(tmp_path: Path) -> None:
    row = a_row("k", cpu_s=1.5, others_busy_cores=0.25, gpu_other_processes=2, precision="amp-fp16")
    with MeasurementStore(tmp_path / "s.db") as store:
        store.put_row(row)
        (stored,) = store.rows()
    assert (stored.cpu_s, stored.others_busy_cores, stored.gpu_other_processes) == (1.5, 0.25, 2)
    assert stored.precision == "amp-fp16"
    for bad in (
        {"cpu_s": -1.0},
        {"others_busy_cores": float("nan")},
        {"gpu_other_processes": -1},
        {"precision": "fp8"},
    ):
        with pytest.raises(InvalidArgument):
            check_row(a_row(**bad), require_graph=False)
