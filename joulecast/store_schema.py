"""The measurement store's schema, its version, and the migrations from older versions.

The version is ``PRAGMA user_version``. A writer migrates an older store in place, in one
transaction (:func:`migrate`); a reader, which must not write, migrates a copy of the
``measurements`` table in the connection's temporary schema (:func:`migrate_in_memory`), which
shadows the file's table for every query of that connection. Either way a reader of any
version sees today's columns, filled the same way.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 4
"""1: the first schema. 2: ``measurements.power_limit_w`` (the GPU power limit of a row).
3: the window's side facts as columns, ``cpu_s`` (the process's CPU seconds, cpu-time meter),
``others_busy_cores`` (cores other work kept busy meanwhile) and ``gpu_other_processes``
(other compute processes on the GPU, NVML meter), which older meters wrote into ``notes``.
4: ``precision``, the arithmetic the work ran in (``fp32``, ``tf32``, ``amp-fp16``,
``amp-bf16``); older rows keep it empty (not known)."""

SIDE_FACTS = ("cpu_s", "others_busy_cores", "gpu_other_processes")
"""The numeric side facts of a window that version 3 turned from notes into columns."""

# ``meta`` (the store's identity) and ``deleted`` (tombstones of deleted rows) were added to
# schema 1 in place: a writer's open creates them, readers take their absence as "no identity,
# nothing deleted", and older joulecast ignore them.
SCHEMA = """
CREATE TABLE IF NOT EXISTS graphs (
    sha256 TEXT PRIMARY KEY,
    onnx BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key TEXT NOT NULL UNIQUE,
    plan TEXT NOT NULL,
    config_id TEXT NOT NULL,
    family TEXT NOT NULL,
    variant TEXT NOT NULL,
    num_layers TEXT NOT NULL,
    hidden_size TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('train', 'test')),
    repeat INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    batch_size INTEGER NOT NULL,
    epochs INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    flops_forward INTEGER,
    flops_train INTEGER,
    params INTEGER,
    duration_s REAL,
    energy_j REAL,
    energy_source TEXT,
    energy_is_estimate INTEGER,
    energy_dynamic_j REAL,
    idle_power_w REAL,
    power_mean_w REAL,
    power_limit_w REAL,
    gpu_util_mean REAL,
    mem_util_mean REAL,
    mem_used_mean_mib REAL,
    short_window INTEGER,
    codecarbon_energy_j REAL,
    codecarbon_mode TEXT,
    meter TEXT,
    notes TEXT,
    hardware TEXT NOT NULL,
    device TEXT NOT NULL,
    device_name TEXT,
    driver TEXT,
    cpu_model TEXT,
    software TEXT,
    data TEXT,
    graph_sha256 TEXT REFERENCES graphs(sha256),
    trace BLOB,
    started_at TEXT,
    finished_at TEXT,
    cpu_s REAL,
    others_busy_cores REAL,
    gpu_other_processes INTEGER,
    precision TEXT
);
CREATE INDEX IF NOT EXISTS measurements_hardware ON measurements(hardware, phase);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deleted (
    row_id INTEGER PRIMARY KEY,
    run_key TEXT NOT NULL,
    hardware TEXT NOT NULL,
    status TEXT NOT NULL,
    deleted_at TEXT NOT NULL
);
"""


def _note_number(notes: str | None, name: str) -> float | None:
    """The number an older meter wrote as ``name=N`` in ``notes`` (``name>=N``: the NVML meter's
    lower bound when this process was not among NVML's processes, kept in the notes beside it);
    None when absent. Only the migration to version 3 reads notes this way."""
    if not notes:
        return None
    found = re.search(rf"(?:^|; ){re.escape(name)}>?=([0-9.eE+-]+)", notes)
    if found is None:
        return None
    try:
        return float(found.group(1))
    except ValueError:
        return None


def _add_columns(db: sqlite3.Connection, schema: str, columns: tuple[tuple[str, str], ...]) -> None:
    present = {r[1] for r in db.execute(f"PRAGMA {schema}.table_info(measurements)")}
    for name, kind in columns:
        if name not in present:
            db.execute(f"ALTER TABLE {schema}.measurements ADD COLUMN {name} {kind}")


def _to_2(db: sqlite3.Connection, schema: str) -> None:
    _add_columns(db, schema, (("power_limit_w", "REAL"),))


def _to_3(db: sqlite3.Connection, schema: str) -> None:
    _add_columns(
        db,
        schema,
        (("cpu_s", "REAL"), ("others_busy_cores", "REAL"), ("gpu_other_processes", "INTEGER")),
    )
    db.create_function("note_number", 2, _note_number, deterministic=True)
    db.execute(
        f"UPDATE {schema}.measurements SET cpu_s = note_number(notes, 'cpu_s'), "
        "others_busy_cores = note_number(notes, 'others_busy_cores'), "
        "gpu_other_processes = CAST(note_number(notes, 'gpu_other_processes') AS INTEGER) "
        "WHERE notes IS NOT NULL"
    )


def _to_4(db: sqlite3.Connection, schema: str) -> None:
    _add_columns(db, schema, (("precision", "TEXT"),))


_MIGRATIONS: dict[int, Callable[[sqlite3.Connection, str], None]] = {
    2: _to_2,
    3: _to_3,
    4: _to_4,
}
"""What takes the ``measurements`` table of a schema (``main``: the file; ``temp``: a reader's
copy) from the version before the
key to the key's version. Each step adds only the columns that are missing, so it also serves a
store whose version predates versioning (0) but whose table has some of them."""


def migrate(db: sqlite3.Connection, path: object) -> None:
    """Bring a writable store to :data:`SCHEMA_VERSION` in place, in one transaction; the
    version is read again under the write lock, since another process may have migrated the
    file meanwhile."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for target in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
            _MIGRATIONS[target](db, "main")
            logger.info("%s: store schema %d -> %d", path, target - 1, target)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def migrate_in_memory(db: sqlite3.Connection, version: int) -> None:
    """Give a read-only connection to a store of an older ``version`` today's columns: its
    ``measurements`` table is copied into the connection's temporary schema (which shadows the
    file's table for every unqualified query) and migrated there. The file is not touched."""
    if version >= SCHEMA_VERSION:
        return
    db.execute("CREATE TEMP TABLE measurements AS SELECT * FROM main.measurements")
    for target in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
        _MIGRATIONS[target](db, "temp")
