"""AddMeasurements has a byte budget per row field and per call: past either, the call ends
RESOURCE_EXHAUSTED and nothing is stored; a large call within it leaves the server's memory
where it was; the sender cuts a large store into calls inside the budget."""

from __future__ import annotations

import dataclasses
import gc
import os
import time
from pathlib import Path

import grpc

from client import convert as client_convert
from client.cli import BYTES_PER_CALL, _batches
from joulecast.store import MeasurementStore
from rpc.auth import bearer_metadata

TOKEN = "s3cret-test-token"  # the `token` fixture of conftest.py
AUTH = bearer_metadata(TOKEN)
FIELDS = ("notes", "software", "data", "device_name", "driver", "cpu_model", "meter", "variant")


def _messages(rows, tag: str, n: int, size: int):
    """``n`` copies of one row, each of its free-text fields ``size`` characters long; the graph
    is sent with the first."""
    row, graph = rows[0]
    for i in range(n):
        text = {f: f[0] * size for f in FIELDS}
        big = dataclasses.replace(row, run_key=f"{tag}/{i}", **text)
        yield client_convert.message_from_row(big, graph if i == 0 else None)


def _stored(db: Path) -> int:
    with MeasurementStore(db, read_only=True) as store:
        return store.count()


def test_a_field_past_its_budget_ends_the_call(
    start_server, make_rows, rpc_error, tmp_path
) -> None:
    served = start_server(db_path=tmp_path / "m.db", profile_workers=0)
    rows = make_rows("cpu-test")
    code, details = rpc_error(
        served.stub.AddMeasurements,
        _messages(rows, "wide", 600, 64 * 1024),
        metadata=AUTH,
        timeout=60,
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "row 0: variant is 65,536 bytes" in details and "at most 16,384 bytes" in details
    assert _stored(tmp_path / "m.db") == 0


def test_a_call_past_its_budget_ends_and_stores_nothing(
    start_server, make_rows, rpc_error, tmp_path
) -> None:
    served = start_server(db_path=tmp_path / "m.db", max_call_bytes=1024 * 1024, profile_workers=0)
    rows = make_rows("cpu-test")
    code, details = rpc_error(
        served.stub.AddMeasurements, _messages(rows, "many", 20, 8000), metadata=AUTH, timeout=60
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "more than 1,048,576 bytes by row 16" in details and "smaller calls" in details
    assert _stored(tmp_path / "m.db") == 0
    reply = served.stub.AddMeasurements(_messages(rows, "few", 10, 8000), metadata=AUTH, timeout=60)
    assert reply.accepted == 10


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_memory_returns_after_a_large_call(start_server, make_rows, tmp_path) -> None:
    """About 40 MB of row text in one call (inside the budget): the server hands the memory it
    freed back (the server runs in this process: its RSS is ours)."""
    served = start_server(db_path=tmp_path / "m.db", profile_workers=0)
    rows = make_rows("cpu-test")
    served.stub.AddMeasurements(_messages(rows, "warm", 5, 16_000), metadata=AUTH, timeout=60)
    gc.collect()
    time.sleep(0.3)
    before = _rss_mb()
    reply = served.stub.AddMeasurements(
        _messages(rows, "large", 260, 16_000), metadata=AUTH, timeout=120
    )
    assert reply.accepted == 260
    gc.collect()
    time.sleep(0.3)
    assert _rss_mb() < before + 24, (before, _rss_mb())


def test_the_sender_cuts_a_large_store_into_calls_inside_the_budget(make_rows) -> None:
    rows = make_rows("cpu-test")
    row, graph = rows[0]
    big = [
        dataclasses.replace(row, run_key=f"k{i}", notes="n" * 16_000, software="s" * 16_000)
        for i in range(3000)
    ]
    batches = list(_batches(big, {row.graph_sha256: graph}))
    assert len(batches) == 3 and batches[1][0] == len(batches[0][1])
    assert sum(len(b) for _, b in batches) == 3000
    assert all(len(b) * 32_000 < BYTES_PER_CALL for _, b in batches)
