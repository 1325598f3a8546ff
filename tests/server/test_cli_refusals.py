"""The CLI's refusals of hostile input: one line on stderr, exit 2, files left as they were."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from collector.importer import read_records
from joulecast.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"


def _refused(capsys, argv: list[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert needle in err, err


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "text.db"
    text.write_text("not a database\n")
    empty = tmp_path / "empty.db"
    empty.touch()
    folder = tmp_path / "folder.db"
    folder.mkdir()
    return {"text": text, "empty": empty, "folder": folder}


@pytest.mark.parametrize(
    "kind,needle", [("text", "not a SQLite"), ("empty", "empty"), ("folder", "folder")]
)
def test_fit_on_a_store_that_is_not_one(capsys, stores, tmp_path, kind, needle) -> None:
    path = stores[kind]
    before = path.read_bytes() if path.is_file() else sorted(os.listdir(path))
    _refused(capsys, ["fit", "--db", str(path), "--out", str(tmp_path / "out")], needle)
    after = path.read_bytes() if path.is_file() else sorted(os.listdir(path))
    assert after == before
    assert not (tmp_path / "out").exists()


def test_add_measurements_and_serve_refuse_a_non_sqlite_store(capsys, stores) -> None:
    _refused(capsys, ["add-measurements", str(stores["text"])], "not a SQLite")
    artifacts = str(ROOT / "artifacts")
    _refused(capsys, ["serve", "--artifacts", artifacts, "--db", str(stores["text"])], "SQLite")
    assert stores["text"].read_text() == "not a database\n"


def test_serve_refuses_a_missing_artifacts_folder(capsys, tmp_path) -> None:
    _refused(capsys, ["serve", "--artifacts", str(tmp_path / "nope")], "does not exist")


def test_predict_refuses_what_is_not_a_regular_file(capsys, tmp_path) -> None:
    _refused(capsys, ["predict", "/dev/zero"], "not a regular file")
    fifo = tmp_path / "fifo.onnx"
    os.mkfifo(fifo)
    _refused(capsys, ["predict", str(fifo)], "not a regular file")  # would block if opened
    _refused(capsys, ["predict", str(tmp_path)], "not a regular file")


def test_predict_refuses_counts_outside_int64(capsys) -> None:
    argv = ["predict", str(SAMPLE), "--batch-size", "99999999999999999999", "--server", "x:1"]
    _refused(capsys, argv, "batch_size")


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_no_time_is_refused_before_any_call(capsys, timeout) -> None:
    # a zero deadline failed every call at once, reported as an unreachable server
    for command in (["predict", str(SAMPLE)], ["retrain", "--hardware", "x"]):
        with pytest.raises(SystemExit) as exited:
            main([*command, "--server", "127.0.0.1:1", "--timeout", timeout])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "--timeout" in err and "seconds" in err and "cannot reach" not in err


def test_a_tls_ca_that_is_no_certificate_is_refused_before_connecting(capsys, tmp_path) -> None:
    not_pem = tmp_path / "hostname"
    not_pem.write_text("build-host-7\n")
    argv = ["predict", str(SAMPLE), "--server", "127.0.0.1:1", "--tls-ca", str(not_pem)]
    _refused(capsys, argv, "holds no PEM certificate")


def test_an_unreachable_server_fails_within_two_seconds(capsys) -> None:
    start = time.monotonic()
    _refused(capsys, ["predict", str(SAMPLE), "--server", "127.0.0.1:1"], "cannot reach")
    assert time.monotonic() - start < 2.0 + 1.5  # 2 s connect bound + stripping the graph


def test_import_refuses_a_binary_file_and_reads_a_bom(capsys, tmp_path) -> None:
    binary = tmp_path / "rows.csv"
    binary.write_bytes(b"\x00\x01\x02\xff\xfe")
    _refused(capsys, ["import", str(binary), "--db", str(tmp_path / "i.db")], "not UTF-8")
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffgraph,phase\nm.onnx,train\n".encode())
    (record,) = list(read_records(bom))
    assert record.values["graph"] == "m.onnx"
