"""`joulecast import` looks at a path before it reads a byte: a FIFO, /dev/zero, a sparse
multi-GB file, an endless line or a header of a million columns each end at once with one
short line on stderr and exit 2, and nothing is written.

Each case runs the real command in a subprocess with a deadline and an address-space cap, so
that reading before looking shows up as a timeout or a MemoryError here, not as a hung or
swapping test machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DEADLINE_S = 30
ADDRESS_SPACE_BYTES = 4 << 30
HEADER = "graph,phase,batch_size,samples,energy_j,energy_source,duration_s,hardware\n"
LAYER = '"Linear(in_features=32,out_features=8)"'


_DRIVER = """
import contextlib, io, json, resource, sys
# The cap is set here, in the child, not by a preexec_fn: a pytest worker that has run gRPC
# servers has threads, and Python code between fork and exec in such a process can crash
# (gRPC skipped its fork handlers and the child aborted on its epoll descriptor).
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[3]), int(sys.argv[3])))
sys.path.insert(0, sys.argv[1])
from joulecast.cli import main
out = []
for argv in json.loads(sys.argv[2]):
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        rc = main(argv)
    out.append([rc, err.getvalue(), std.getvalue()])
print(json.dumps(out))
"""


def _imports(*calls: tuple[Path, Path, tuple[str, ...]]) -> list[subprocess.CompletedProcess]:
    """``joulecast import PATH --db DB EXTRA...`` for each call, one after another in one
    subprocess (one interpreter start for them all) under a deadline and an address-space cap."""
    argvs = [["import", str(path), "--db", str(db), *extra] for path, db, extra in calls]
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(ROOT), json.dumps(argvs), str(ADDRESS_SPACE_BYTES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [
        subprocess.CompletedProcess(argv, rc, stdout, stderr)
        for argv, (rc, stderr, stdout) in zip(argvs, json.loads(done.stdout), strict=True)
    ]


def _import(path: Path, db: Path, *extra: str) -> subprocess.CompletedProcess:
    return _imports((path, db, extra))[0]


def _refused(done: subprocess.CompletedProcess, needle: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert needle in lines[0] and len(lines[0]) < 1000, lines[0][:2000]


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    formats = ((), ("--format", "joulecast"), ("--format", "codecarbon"))
    for done in _imports(*((fifo, tmp_path / "m.db", extra) for extra in formats)):
        _refused(done, "is a FIFO (named pipe)")
    assert not (tmp_path / "m.db").exists()


def test_what_is_no_readable_file_is_refused_on_one_line(tmp_path: Path) -> None:
    """/dev/zero behind a link, a sparse file of 2 GB, endless lines, a million-column header,
    graphs that are a FIFO or /dev/zero: each refused at once, one short line, nothing
    written; and a good file still imports."""
    db = tmp_path / "m.db"
    link = tmp_path / "emissions.csv"
    link.symlink_to("/dev/zero")
    sparse = tmp_path / "big.csv"
    with sparse.open("wb") as fh:
        fh.write(HEADER.encode())
        fh.truncate(2 << 30)  # sparse: no disk used
    endless = tmp_path / "rows.csv"
    endless.write_bytes(b"a" * (3 << 20))
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_bytes(b"{}\n" + b"[" * (3 << 20))
    million = tmp_path / "million.csv"
    million.write_text(",".join(f"c{i}" for i in range(10**6)) + "\n")  # 6.9 MB on one line
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(10**5)) + "\n")
    few = tmp_path / "few.csv"
    few.write_text(HEADER.strip() + "," + ",".join(f"x{i}" for i in range(200)) + "\n")
    graphs = {}
    for kind in ("fifo", "zero"):
        folder = tmp_path / kind
        folder.mkdir()
        if kind == "fifo":
            os.mkfifo(folder / "g.onnx")
        else:
            (folder / "g.onnx").symlink_to("/dev/zero")
        graphs[kind] = folder / "rows.csv"
        graphs[kind].write_text(HEADER + "g.onnx,test,8,64,3.0,rapl,0.5,cpu-x\n")
    good = tmp_path / "good.csv"
    good.write_text(HEADER + f"{LAYER},test,8,64,3.0,rapl,0.5,cpu-x\n")
    cases = [
        (link, "is a character device"),
        (sparse, "2,147,483,648 bytes; the limit is"),
        (endless, "line 1 is longer than"),
        (jsonl, "line 2 is longer than"),
        (million, "line 1 is longer than 1,048,576 characters"),
        (wide, "the header has 100,000 columns; at most 256"),
        (few, "200 unknown column(s) x0, x1"),
    ]
    done = _imports(*((path, db, ()) for path, _ in cases), *((p, db, ()) for p in graphs.values()))
    for (_, needle), result in zip(cases, done, strict=False):
        _refused(result, needle)
    assert "and 190 more" in done[len(cases) - 1].stderr
    for result in done[len(cases) :]:
        assert result.returncode == 2, result.stderr[-2000:]
        assert "rows.csv:2: graph 'g.onnx'" in result.stderr
        assert "not a regular file" in result.stderr and len(result.stderr) < 2000
    assert not db.exists()
    (imported,) = _imports((good, db, ()))
    assert imported.returncode == 0 and "imported 1 row(s)" in imported.stdout, imported.stderr
