"""The measurement store: one SQLite file (WAL), one row per (run, phase, repeat).

Rows are written in a single transaction each, so a reader (or a resumed sweep) sees a row
whole or not at all. Weightless ONNX graphs are stored once per content hash in ``graphs``.

Commands that only read (export, fit and its layer-sum data, report, add-measurements' sender,
``import --dry-run``, the campaign's repeatability table) open the store with
``read_only=True``: nothing is written, not even the pragmas and the schema a writer sets up,
so the file's bytes and mtime stay as they are, and a store on a read-only disk can be read.

The schema is versioned by ``PRAGMA user_version`` (:data:`SCHEMA_VERSION`,
:mod:`joulecast.store_schema`). A writer migrates an older store in place, in one transaction;
a reader migrates a copy of its rows in memory, so that it sees today's columns filled as a
writer's migration fills them while the file stays as it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import asdict, fields
from datetime import UTC, datetime
from pathlib import Path

from joulecast.errors import InvalidArgument
from joulecast.measurement import ROW_COLUMNS, Row, TraceSample, check_row, graph_sha256
from joulecast.store_schema import SCHEMA, SCHEMA_VERSION, migrate, migrate_in_memory

logger = logging.getLogger(__name__)


def encode_trace(trace: tuple[TraceSample, ...]) -> bytes | None:
    """Compact per-run trace: zlib-compressed JSON of column lists."""
    if not trace:
        return None
    cols = {f.name: [getattr(s, f.name) for s in trace] for f in fields(TraceSample)}
    return zlib.compress(json.dumps(cols, separators=(",", ":")).encode(), 6)


def decode_trace(blob: bytes | None) -> tuple[TraceSample, ...]:
    if not blob:
        return ()
    cols = json.loads(zlib.decompress(blob))
    n = len(cols["t_s"])
    return tuple(TraceSample(**{k: v[i] for k, v in cols.items()}) for i in range(n))


class MeasurementStore:
    """A SQLite measurement store. Open one per thread or process.

    ``read_only=True`` opens an existing store for reading only (see the module docstring);
    write methods then raise :class:`~joulecast.errors.InvalidArgument`.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            self._db = connect_read_only(self.path)
        else:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            except sqlite3.Error as exc:
                raise InvalidArgument(f"cannot open measurement store {self.path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise InvalidArgument(f"{self.path} is not a measurement store: {exc}") from exc
        if not 0 <= version <= SCHEMA_VERSION:
            self._db.close()
            raise InvalidArgument(
                f"{self.path} has store schema {version}; this joulecast reads up to "
                f"{SCHEMA_VERSION}"
            )
        if read_only:
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
            if not {"graphs", "measurements"} <= tables:
                self._db.close()
                raise InvalidArgument(f"{self.path} is not a measurement store (no tables)")
            migrate_in_memory(self._db, version)
            return
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        if version == 0:
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version < SCHEMA_VERSION:
            migrate(self._db, self.path)
        if self.store_id() is None:
            self._db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('store_id', ?)", (uuid.uuid4().hex,)
            )

    def _writable(self) -> None:
        if self.read_only:
            raise InvalidArgument(f"{self.path} was opened read-only")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> MeasurementStore:
        return self

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[MeasurementStore]:
        """Reads inside see one state of the store (one read transaction): rows read with the
        largest row id and the tombstones beside them agree, whatever a writer does meanwhile."""
        self._db.execute("BEGIN")
        try:
            yield self
        finally:
            self._db.execute("COMMIT")

    def __exit__(self, *exc: object) -> None:
        self.close()

    def put_graph(self, onnx_bytes: bytes) -> str:
        """Store a weightless graph once; returns its sha256."""
        return self.put_graphs([onnx_bytes])[0]

    def put_graphs(self, graphs: list[bytes]) -> list[str]:
        """Store weightless graphs (each once) in one transaction; returns their sha256s."""
        self._writable()
        shas = [graph_sha256(g) for g in graphs]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO graphs(sha256, onnx) VALUES (?, ?)",
                zip(shas, graphs, strict=True),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return shas

    def get_graph(self, sha256: str) -> bytes | None:
        found = self._db.execute("SELECT onnx FROM graphs WHERE sha256 = ?", (sha256,)).fetchone()
        return bytes(found[0]) if found else None

    def put_rows(
        self,
        rows: list[tuple[Row, tuple[TraceSample, ...]]],
        replace_failed: bool = True,
    ) -> None:
        """Insert rows atomically (all or none). A failed row with the same key is replaced;
        an ``ok`` row with the same key is never overwritten (raises). Every row passes
        :func:`joulecast.measurement.check_row` first (InvalidArgument names the bad one)."""
        self._writable()
        rows = [(check_row(row, require_graph=False), trace) for row, trace in rows]
        cols = (*ROW_COLUMNS, "trace")
        sql = f"INSERT INTO measurements({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for row, trace in rows:
                if replace_failed:
                    self._db.execute(
                        "DELETE FROM measurements WHERE run_key = ? AND status = 'failed'",
                        (row.run_key,),
                    )
                values = [getattr(row, c) for c in ROW_COLUMNS]
                self._db.execute(sql, (*values, encode_trace(trace)))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def delete_rows(self, run_keys: list[str]) -> list[str]:
        """Delete the rows of ``run_keys`` in one transaction; returns the keys that were not
        stored. Graphs stay (other rows may share them). Each deleted row leaves a tombstone
        (its id, key, hardware and status): a predictor fitted before knows it rested on it
        (:meth:`deleted_count`)."""
        self._writable()
        missing: list[str] = []
        now = datetime.now(UTC).isoformat()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for key in run_keys:
                found = self._db.execute(
                    "SELECT id, hardware, status FROM measurements WHERE run_key = ?", (key,)
                ).fetchone()
                if found is None:
                    missing.append(key)
                    continue
                self._db.execute(
                    "INSERT OR REPLACE INTO deleted(row_id, run_key, hardware, status, deleted_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (found[0], key, found[1], found[2], now),
                )
                self._db.execute("DELETE FROM measurements WHERE id = ?", (found[0],))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return missing

    def _has(self, table: str) -> bool:
        found = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return found is not None

    def store_id(self) -> str | None:
        """This store's identity (a random id written when a writer first opened it; None for a
        store no writer of this joulecast has opened): a predictor records the store it was
        fitted on, so that the rows it rested on can be traced."""
        if not self._has("meta"):
            return None
        found = self._db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        return str(found[0]) if found else None

    def max_row_id(self) -> int:
        """The largest row id ever given (ids are never reused): rows with an id up to this
        were all in the store or already deleted when it was read."""
        if self._has("sqlite_sequence"):
            found = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'measurements'"
            ).fetchone()
            if found is not None:
                return int(found[0])
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM measurements").fetchone()[0])

    def deleted_count(self, hardware: str, up_to_row_id: int, status: str = "ok") -> int:
        """Rows of ``hardware`` with an id up to ``up_to_row_id`` deleted so far (tombstones,
        never removed: a count taken when a predictor was fitted, subtracted from a later one,
        is the rows it rested on that were deleted since)."""
        if not self._has("deleted"):
            return 0
        return int(
            self._db.execute(
                "SELECT COUNT(*) FROM deleted WHERE hardware = ? AND row_id <= ? AND status = ?",
                (hardware, up_to_row_id, status),
            ).fetchone()[0]
        )

    def put_row(self, row: Row, trace: tuple[TraceSample, ...] = ()) -> None:
        self.put_rows([(row, trace)])

    def done_keys(self) -> set[str]:
        """Run keys whose rows finished successfully (never redone on resume)."""
        return {
            r[0] for r in self._db.execute("SELECT run_key FROM measurements WHERE status='ok'")
        }

    def all_keys(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT run_key FROM measurements")}

    def rows(self, status: str | None = "ok", hardware: str | None = None) -> list[Row]:
        sql = f"SELECT {', '.join(ROW_COLUMNS)} FROM measurements WHERE 1=1"
        args: list[object] = []
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        if hardware is not None:
            sql += " AND hardware = ?"
            args.append(hardware)
        sql += " ORDER BY id"
        return [_to_row(r) for r in self._db.execute(sql, args)]

    def trace(self, run_key: str) -> tuple[TraceSample, ...]:
        found = self._db.execute(
            "SELECT trace FROM measurements WHERE run_key = ?", (run_key,)
        ).fetchone()
        return decode_trace(found[0]) if found else ()

    def hardware_names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT hardware FROM measurements")]

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]

    def iter_dicts(self, status: str | None = "ok") -> Iterator[dict[str, object]]:
        for row in self.rows(status=status):
            yield asdict(row)


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes to ``path`` nor creates files next to it.

    A WAL database opened with ``mode=ro`` still needs its ``-shm`` (and creates ``-wal``)
    files, which a read-only folder forbids and which would litter the shipped store's folder.
    When no ``-wal`` file exists, every commit is in the main file, so it is opened
    ``immutable=1``: no lock, no side files. (A writer that starts meanwhile writes to a new
    ``-wal`` first; the main file only changes at its checkpoint.) When a ``-wal`` file exists,
    a writer is active or stopped uncleanly and its commits live there: ``mode=ro`` reads them.
    """
    if not path.is_file():
        raise InvalidArgument(f"no measurement store at {path}")
    uri = path.resolve().as_uri()
    wal = path.with_name(path.name + "-wal")
    has_wal = wal.is_file() and wal.stat().st_size > 0
    if has_wal:
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30.0, isolation_level=None)
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError as exc:  # e.g. no -shm and a read-only folder
            logger.warning(
                "%s: cannot read its -wal file (%s); reading the main file only: commits still "
                "in the -wal file are not seen",
                path,
                exc,
            )
    try:
        return sqlite3.connect(
            f"{uri}?mode=ro&immutable=1", uri=True, timeout=30.0, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise InvalidArgument(f"cannot open measurement store {path} read-only: {exc}") from exc


def _to_row(record: sqlite3.Row) -> Row:
    values = dict(record)
    for flag in ("energy_is_estimate", "short_window"):
        if values[flag] is not None:
            values[flag] = bool(values[flag])
    return Row(**values)


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_store_file(path: str | Path) -> Path:
    """``path`` if it is an existing, non-empty SQLite file; else InvalidArgument saying what it
    is. Reads 16 bytes and changes nothing (a reader must not turn a stray file into a store)."""
    path = Path(path)
    if not path.exists():
        raise InvalidArgument(f"measurement store {path} does not exist")
    if path.is_dir():
        raise InvalidArgument(f"measurement store {path} is a folder, not a SQLite file")
    if not path.is_file():
        raise InvalidArgument(f"measurement store {path} is not a regular file")
    with open(path, "rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if not head:
        raise InvalidArgument(f"measurement store {path} is empty, not a SQLite file")
    if head != SQLITE_MAGIC:
        raise InvalidArgument(f"measurement store {path} is not a SQLite file")
    return path
