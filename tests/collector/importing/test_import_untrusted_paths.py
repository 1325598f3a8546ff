"""`joulecast import` looks at a path before it reads a byte: a FIFO, /dev/zero, a sparse
multi-GB file, an endless line or a header of a million columns each end at once with one
short line on stderr and exit 2, and nothing is written.

Each case runs the real command in a subprocess with a deadline and an address-space cap, so
that reading before looking shows up as a timeout or a MemoryError here, not as a hung or
swapping test machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DEADLINE_S = 30
ADDRESS_SPACE_BYTES = 4 << 30
HEADER = "graph,phase,batch_size,samples,energy_j,energy_source,duration_s,hardware\n"
LAYER = '"Linear(in_features=32,out_features=8)"'


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))


def _import(path: Path, db: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "joulecast.cli", "import", str(path), "--db", str(db), *extra],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        preexec_fn=_cap_memory,
        check=False,
    )


def _refused(done: subprocess.CompletedProcess, needle: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert needle in lines[0] and len(lines[0]) < 1000, lines[0][:2000]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    for extra in ((), ("--format", "joulecast"), ("--format", "codecarbon")):
        _refused(_import(fifo, tmp_path / "m.db", *extra), "is a FIFO (named pipe)")
    assert not (tmp_path / "m.db").exists()


def test_dev_zero_behind_a_link_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "emissions.csv"
    link.symlink_to("/dev/zero")
    _refused(_import(link, tmp_path / "m.db"), "is a character device")
    assert not (tmp_path / "m.db").exists()


def test_a_sparse_file_of_2_gb_is_refused_by_its_size(tmp_path: Path) -> None:
    sparse = tmp_path / "big.csv"
    with sparse.open("wb") as fh:
        fh.write(HEADER.encode())
        fh.truncate(2 << 30)  # sparse: no disk used
    _refused(_import(sparse, tmp_path / "m.db"), "2,147,483,648 bytes; the limit is")
    assert not (tmp_path / "m.db").exists()


def test_a_line_without_end_is_cut_at_its_limit(tmp_path: Path) -> None:
    endless = tmp_path / "rows.csv"
    endless.write_bytes(b"a" * (3 << 20))
    _refused(_import(endless, tmp_path / "m.db"), "line 1 is longer than")
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_bytes(b"{}\n" + b"[" * (3 << 20))
    _refused(_import(jsonl, tmp_path / "m.db"), "line 2 is longer than")


def test_a_header_of_a_million_columns_gets_a_short_error(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(10**6)) + "\n")  # 6.9 MB on one line
    _refused(_import(wide, tmp_path / "m.db"), "line 1 is longer than 1,048,576 characters")
    wide.write_text(",".join(f"c{i}" for i in range(10**5)) + "\n")
    _refused(_import(wide, tmp_path / "m.db"), "the header has 100,000 columns; at most 256")
    few = tmp_path / "few.csv"
    few.write_text(HEADER.strip() + "," + ",".join(f"x{i}" for i in range(200)) + "\n")
    done = _import(few, tmp_path / "m.db")
    _refused(done, "200 unknown column(s) x0, x1")
    assert "and 190 more" in done.stderr


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_a_graph_that_is_not_a_file_is_a_bad_record(tmp_path: Path, kind: str) -> None:
    graph = tmp_path / "g.onnx"
    if kind == "fifo":
        os.mkfifo(graph)
    else:
        graph.symlink_to("/dev/zero")
    rows = tmp_path / "rows.csv"
    rows.write_text(HEADER + "g.onnx,test,8,64,3.0,rapl,0.5,cpu-x\n")
    done = _import(rows, tmp_path / "m.db")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "rows.csv:2: graph 'g.onnx'" in done.stderr and "not a regular file" in done.stderr
    assert len(done.stderr) < 2000


def test_a_good_file_still_imports(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(HEADER + f"{LAYER},test,8,64,3.0,rapl,0.5,cpu-x\n")
    done = _import(rows, tmp_path / "m.db")
    assert done.returncode == 0 and "imported 1 row(s)" in done.stdout, done.stderr
