"""`joulecast import` on Zeus NSDI '23 trace folders: crafted ones (good and bad lines) and,
as a slow test, the real traces in /work/shared/external/zeus-nsdi23."""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import pytest

from collector import import_cli
from collector.import_zeus import COLUMNS, GPUS, looks_like_zeus
from collector.importer import BadImport
from joulecast.errors import InvalidArgument
from joulecast.measurement import SOURCE_ZEUS_NVML_EPOCH, check_row, source_problem
from joulecast.store import MeasurementStore

HEADER = ",".join(COLUMNS)
REAL = Path(os.environ.get("ZEUS_NSDI23_DIR", "/work/shared/external/zeus-nsdi23"))
GOOD_V100 = [
    "cifar100,shufflenetv2,1024,adadelta,100,11.276666666666666,86.86460850784009",
    "cifar100,shufflenetv2,1024,adam,100,11.086666666666668,91.0042349567595",
    "cifar100,shufflenetv2,1024,adadelta,250,7.4,160.5",
    "movielens-1m,ncf,4096,adam,100,12.5,101.9",  # above the limit, within NVML's 5 %
]
GOOD_RTX = ["movielens-1m,ncf,4096,adam,260,20.2,130.0"]


def _write(folder: Path, gpu: str, lines: list[str]) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"summary_power_{gpu}.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    import_cli.register(parser.add_subparsers())
    args = parser.parse_args(["import", *argv])
    return args.func(args)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "zeus"
    _write(root, "v100", GOOD_V100)
    _write(root, "rtx6000", GOOD_RTX)
    (root / "summary_train.csv").write_text("dataset,network\ncifar100,shufflenetv2\n")
    return root


def test_the_source_is_a_measured_external_one() -> None:
    assert source_problem(SOURCE_ZEUS_NVML_EPOCH) is None
    assert {g.hardware for g in GPUS.values()} == {
        "v100-pcie-32gb",
        "p100-pcie-16gb",
        "quadro-rtx6000",
    }


def test_each_line_becomes_one_measured_epoch_row(folder: Path, capsys) -> None:
    db = folder.parent / "z.db"
    assert looks_like_zeus(folder) and not looks_like_zeus(folder.parent)
    assert _run(str(folder), "--db", str(db)) == 0
    assert "1 line(s) average above their power limit" in capsys.readouterr().out
    with MeasurementStore(db) as store:
        rows = {(r.hardware, r.run_key): r for r in store.rows()}.values()
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    assert len(rows) == 5 and all(graphs.values()) and len(graphs) == 2
    by_line = {r.notes.split(":")[0].split()[-1] + ":" + r.notes.split(":")[1]: r for r in rows}
    first = by_line["summary_power_v100.csv:2"]
    assert first.hardware == "v100-pcie-32gb" and first.device_name == "Tesla V100-PCIE-32GB"
    assert first.energy_j == 11.276666666666666 * 86.86460850784009
    assert first.duration_s == 11.276666666666666 and first.power_mean_w == 86.86460850784009
    assert first.power_limit_w == 100.0
    assert first.energy_source == SOURCE_ZEUS_NVML_EPOCH and first.energy_is_estimate is False
    assert (first.phase, first.samples, first.batch_size, first.epochs) == (
        "train",
        50_000,
        1024,
        1,
    )
    assert first.family == "cnn" and first.params == 1_360_896 and first.variant == "adadelta"
    assert "run_id=v100/cifar100/shufflenetv2/adadelta/b1024/pl100" in first.notes
    assert check_row(first) == first
    ncf = by_line["summary_power_v100.csv:5"]
    assert ncf.samples == 994_169 * 5 and ncf.family == "mlp"
    assert "1.9% above the power limit" in ncf.notes
    assert "assumed implementation: guoyang9/NCF" in ncf.notes
    # optimizer and power limit keep configurations apart; the GPU is the hardware
    assert len({(r.hardware, r.config_id) for r in rows}) == 5
    rtx = by_line["summary_power_rtx6000.csv:2"]
    assert rtx.hardware == "quadro-rtx6000" and rtx.power_limit_w == 260.0
    assert rtx.config_id == ncf.config_id.replace("pl100", "pl260")
    # importing again adds nothing
    _run(str(folder), "--db", str(db))
    assert "imported 0 row(s)" in capsys.readouterr().out


BAD = {
    "cifar100,shufflenetv2,1024,adadelta,,11.2,86.8": "power_limit is missing",
    "cifar100,shufflenetv2,1024,adadelta,100,fast,86.8": "time_per_epoch='fast' is not a number",
    "cifar100,shufflenetv2,1024,adadelta,100,0,86.8": "time_per_epoch='0' must be > 0",
    "cifar100,shufflenetv2,1024,adadelta,100,11.2,-3": "average_power='-3' must be > 0",
    "cifar100,shufflenetv2,1024,adadelta,250,11.2,251": (
        "average_power=251 W is above the Tesla V100-PCIE-32GB's maximum of 250 W"
    ),
    "cifar100,shufflenetv2,1024,adadelta,300,11.2,200": (
        "power_limit=300 W is above the Tesla V100-PCIE-32GB's maximum of 250 W"
    ),
    "cifar100,shufflenetv2,1024,adadelta,100,11.2,106": (
        "average_power=106 W is above the 100 W power limit by more than NVML's ±5%"
    ),
    "cifar100,shufflenetv2,12.5,adadelta,100,11.2,86.8": "batch_size='12.5' is not an integer",
    "mnist,lenet,64,sgd,100,11.2,86.8": (
        "unknown Zeus workload mnist/lenet (known: cifar100/shufflenetv2, imagenet/resnet50, "
        "librispeech/deepspeech2, squad/bert_base_uncased, sentiment140/bert_base_uncased, "
        "movielens-1m/ncf)"
    ),
    "cifar100,shufflenetv2,1024,adam,100,11.0,91.0": (
        "same dataset, network, batch size, optimizer and limit as summary_power_v100.csv:3"
    ),
    "cifar100,shufflenetv2,1024,adadelta,100,11.2,86.8,extra": (
        "more fields than the header has columns"
    ),
}


def test_a_malformed_line_is_refused_with_its_file_and_line(folder: Path, capsys) -> None:
    _write(folder, "v100", [*GOOD_V100, *BAD])
    _write(folder, "gtx480", ["movielens-1m,ncf,4096,adam,100,12.5,99.0"])
    db = folder.parent / "z.db"
    with pytest.raises(BadImport) as caught:
        _run(str(folder), "--db", str(db))
    problems = [str(p) for p in caught.value.problems]
    expected = [f"summary_power_v100.csv:{n}: {why}" for n, why in enumerate(BAD.values(), 6)]
    assert problems[0].startswith("summary_power_gtx480.csv:1: unknown GPU 'gtx480'")
    assert "--zeus-gpu gtx480=ID" in problems[0]
    assert problems[1:] == expected
    assert all("\n" not in p for p in problems)
    assert not db.exists() or MeasurementStore(db, read_only=True).count() == 0
    # --skip-bad imports the good lines and lists the others
    _run(str(folder), "--db", str(db), "--skip-bad")
    out = capsys.readouterr().out
    assert "skipped summary_power_v100.csv:7: time_per_epoch='fast' is not a number" in out
    with MeasurementStore(db) as store:
        assert store.count() == len(GOOD_V100) + len(GOOD_RTX)


def test_a_gpu_of_the_catalog_imports_with_tf32_where_the_traces_ran_it(tmp_path: Path) -> None:
    root = tmp_path / "zeus"
    _write(root, "a40", ["movielens-1m,ncf,4096,adam,300,12.5,99.0",
                         "librispeech,deepspeech2,32,adamw,300,900.0,280.0"])  # fmt: skip
    _write(root, "a100", ["movielens-1m,ncf,4096,adam,300,6.5,120.0"])
    db = tmp_path / "z.db"
    # "a100" is four catalogued boards: refused, with how to say which
    with pytest.raises(BadImport) as caught:
        _run(str(root), "--db", str(db))
    assert "names several catalogued GPUs" in str(caught.value.problems[0])
    assert "--zeus-gpu a100=ID" in str(caught.value.problems[0])
    _run(str(root), "--db", str(db), "--zeus-gpu", "a100=a100-sxm4-40gb")
    with MeasurementStore(db, read_only=True) as store:
        rows = {(r.hardware, r.config_id.split("/")[1]): r for r in store.rows()}
    ncf = rows["a40", "movielens-1m"]
    # PyTorch 1.10.1 ran FP32 matrix products as TF32 on Ampere; mixed precision stays itself
    assert ncf.precision == "tf32" and "assumed precision tf32" in ncf.notes
    assert "assumed board: a40" in ncf.notes and ncf.device_name == "NVIDIA A40"
    assert rows["a40", "librispeech"].precision == "amp-fp16"
    assert rows["a100-sxm4-40gb", "movielens-1m"].precision == "tf32"
    # NVML's name of the board, as its own measurements would carry it
    assert rows["a100-sxm4-40gb", "movielens-1m"].device_name == "NVIDIA A100-SXM4-40GB"
    with pytest.raises(InvalidArgument, match="not TAG=ID"):
        _run(str(root), "--db", str(db), "--zeus-gpu", "a100")


def test_a_file_with_other_columns_is_refused(folder: Path) -> None:
    (folder / "summary_power_p100.csv").write_text("dataset,network,batch_size\ncifar100,x,1\n")
    with pytest.raises(InvalidArgument, match=r"summary_power_p100\.csv:1: header dataset,"):
        _run(str(folder), "--db", str(folder.parent / "z.db"))


def test_hardware_cannot_be_set_for_a_folder_of_three_gpus(folder: Path) -> None:
    with pytest.raises(InvalidArgument, match="--hardware does not apply"):
        _run(str(folder), "--db", str(folder.parent / "z.db"), "--hardware", "h100")


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_dir(), reason="the Zeus traces are not on this machine")
def test_the_real_traces_import_whole(tmp_path: Path) -> None:
    from collector.export import export_store

    db = tmp_path / "zeus.db"
    _run(str(REAL), "--db", str(db))
    with MeasurementStore(db, read_only=True) as store:
        rows = store.rows()
    lines = sum(sum(1 for _ in csv.DictReader(p.open())) for p in REAL.glob("summary_power_*.csv"))
    assert len(rows) == lines == 1156
    counts = {h: sum(r.hardware == h for r in rows) for h in ("v100-pcie-32gb", "p100-pcie-16gb")}
    assert counts == {"v100-pcie-32gb": 476, "p100-pcie-16gb": 270}
    assert len({r.graph_sha256 for r in rows}) == 6
    assert sum(r.power_mean_w > r.power_limit_w for r in rows) == 8
    assert export_store(db, tmp_path / "zeus.csv") == 1156


def test_the_shipped_store_says_which_trainer_ran_in_mixed_precision() -> None:
    """deepspeech.pytorch's LibriSpeech config trains in FP16 mixed precision; the other
    trainers in FP32: each row says which, and a DeepSpeech2 row's notes say why."""
    shipped = Path(__file__).resolve().parents[3] / "artifacts" / "measurements" / "zeus-nsdi23.db"
    with MeasurementStore(shipped, read_only=True) as store:
        rows = store.rows()
    speech = [r for r in rows if "/deepspeech2/" in r.config_id]
    assert len(speech) == 247
    assert {r.precision for r in speech} == {"amp-fp16"}
    assert all("trainer.precision 16" in (r.notes or "") for r in speech)
    assert {r.precision for r in rows if r not in speech} == {"fp32"}


def test_off_a_terminal_the_graph_rebuild_shows_lines_of_progress(folder: Path, capsys) -> None:
    # pytest's stderr is not a terminal, as a log file or CI is not: lines, not a bar
    _run(str(folder), "--db", str(folder.parent / "z.db"))
    err = capsys.readouterr().err
    assert "building the Zeus workloads' graphs: 2/2 (100%)" in err
