"""`joulecast import` on hand-made files: CodeCarbon CSV with a bad row, joulecast CSV/JSONL."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import onnx
import pytest
import torch

from collector import import_cli
from collector.importer import BadImport
from joulecast.errors import InvalidArgument
from joulecast.graph import profile_graph
from joulecast.measurement import source_problem as check_source
from joulecast.store import MeasurementStore
from joulecast.weightless import is_weightless

HEADER = (
    "timestamp,project_name,run_id,duration,emissions,emissions_rate,cpu_power,gpu_power,"
    "ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,os,python_version,cpu_count,"
    "cpu_model,gpu_count,gpu_model,ram_total_size,tracking_mode,on_cloud"
)


LAYER = '"Linear(in_features=32,out_features=8)"'


def _cc_row(run: str, model: str, batch: int, passes: int, gpu_kwh: str) -> str:
    return (
        f'2024-01-01T00:00:00,"model:{model},batch_size:{batch},forward_passes:{passes}",{run},'
        f"30.0,0.001,0.0,30.0,60.0,10.0,0.0002,{gpu_kwh},0.0001,0.0005,Linux,3.11,8,Xeon,1,"
        "1 x GPU,64,machine,N"
    )


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    for name, width in (("small", 8), ("wide", 64)):
        model = torch.nn.Sequential(torch.nn.Linear(16, width), torch.nn.ReLU())
        # a full export, weights included: the import must store it weightless
        torch.onnx.export(
            model,
            (torch.zeros(1, 16),),
            str(graphs / f"{name}.onnx"),
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
        )
    rows = [
        _cc_row("r1", "small", 8, 100, "0.0003"),
        _cc_row("r2", "wide", 8, 100, "0.0004"),
        _cc_row("r3", "wide", 4, 50, "-0.0004"),  # bad: negative energy
        _cc_row("r4", "missing", 4, 50, "0.0004"),  # bad: no such graph
    ]
    (tmp_path / "emissions.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    return tmp_path


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    import_cli.register(parser.add_subparsers())
    args = parser.parse_args(["import", *argv])
    return args.func(args)


def _cc_args(folder: Path, db: Path) -> list[str]:
    return [
        str(folder / "emissions.csv"),
        "--db",
        str(db),
        "--hardware",
        "gpu-x",
        "--phase",
        "test",
        "--graph-template",
        "graphs/{model}.onnx",
        "--set",
        "batch_size={batch_size}",
        "--set",
        "samples={forward_passes}*{batch_size}",
    ]


def test_bad_row_refuses_the_batch_with_line_and_reason(folder: Path) -> None:
    db = folder / "m.db"
    with pytest.raises(BadImport) as caught:
        _run(_cc_args(folder, db))
    message = str(caught.value)
    assert "emissions.csv:4: energy_j=" in message and "must be > 0" in message
    assert "emissions.csv:5: graph 'graphs/missing.onnx'" in message
    with MeasurementStore(db) as store:
        assert store.count() == 0


def test_skip_bad_imports_the_rest_weightless_and_idempotent(folder: Path, capsys) -> None:
    db = folder / "m.db"
    assert _run([*_cc_args(folder, db), "--skip-bad"]) == 0
    assert "skipped emissions.csv:4" in capsys.readouterr().out
    with MeasurementStore(db) as store:
        rows = store.rows()
        assert len(rows) == 2
        for row in rows:
            graph = store.get_graph(row.graph_sha256)
            assert is_weightless(onnx.load_model_from_string(graph))
            assert row.flops_forward == profile_graph(graph).flops_forward
            assert row.energy_j == pytest.approx(
                float({"r1": 0.0003, "r2": 0.0004}[row.notes.split("run_id=")[1]]) * 3.6e6
            )
            assert row.samples == 800 and row.energy_source == "codecarbon-pynvml"
    assert _run([*_cc_args(folder, db), "--skip-bad", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["imported"], result["already_present"], result["bad"]) == (0, 2, 2)


def test_whole_machine_energy_is_labelled_an_estimate(folder: Path) -> None:
    db = folder / "m.db"
    _run([*_cc_args(folder, db), "--skip-bad", "--energy", "energy_consumed"])
    with MeasurementStore(db) as store:
        rows = store.rows()
    assert {r.energy_source for r in rows} == {"estimate-codecarbon-total"}
    assert all(r.energy_is_estimate and r.energy_j == pytest.approx(0.0005 * 3.6e6) for r in rows)


def test_joulecast_csv_and_jsonl(tmp_path: Path) -> None:
    header = "graph,phase,batch_size,samples,energy_j,energy_source,duration_s,hardware,repeat"
    lines = [
        header,
        f"{LAYER},train,8,800,12.5,rapl,3.0,cpu-x,0",
        f"{LAYER},train,8,800,13.0,estimate-tdp,3.0,cpu-x,1",
        f"{LAYER},test,8,800,1.0,wattmeter,0.5,cpu-x,0",
        f"{LAYER},fit,0,800,1.0,rapl,0.5,cpu-x,0",
        "Linear(in_features=32,out_features=8),test,8,800,1.0,rapl,0.5,cpu-x,0",
    ]
    csv_file = tmp_path / "runs.csv"
    csv_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadImport) as caught:
        _run([str(csv_file), "--db", str(tmp_path / "a.db")])
    problems = [str(p) for p in caught.value.problems]
    assert problems[0].startswith("runs.csv:4: unknown energy source 'wattmeter'")
    assert problems[1].startswith("runs.csv:5: phase='fit'")
    assert problems[2] == "runs.csv:6: more fields than the header has columns (an unquoted comma?)"
    good = "\n".join(
        json.dumps(dict(zip(header.split(","), next(csv.reader([line])), strict=True)))
        for line in lines[1:3]
    )
    jsonl = tmp_path / "runs.jsonl"
    jsonl.write_text(good + "\n")
    _run([str(jsonl), "--db", str(tmp_path / "a.db")])
    with MeasurementStore(tmp_path / "a.db") as store:
        rows = {r.repeat: r for r in store.rows()}
    assert rows[0].energy_is_estimate is False and rows[1].energy_is_estimate is True
    assert rows[0].config_id == rows[1].config_id  # same graph and batch size


def test_unknown_columns_and_sources() -> None:
    assert check_source("nvml-energy-counter") is None
    assert check_source("codecarbon-pynvml") is None
    assert check_source("estimate-codecarbon-cpu-load") is None
    assert "not a measurement" in check_source("codecarbon-cpu-load")
    assert "unknown energy source" in check_source("joules")


def test_codecarbon_file_needs_its_mapping(folder: Path) -> None:
    with pytest.raises(InvalidArgument, match="--set batch_size"):
        _run(
            [
                str(folder / "emissions.csv"),
                "--db",
                str(folder / "m.db"),
                "--hardware",
                "h",
                "--phase",
                "test",
                "--graph-column",
                "run_id",
            ]
        )


def test_power_limit_is_imported_from_csv_and_jsonl_and_exported(tmp_path: Path) -> None:
    from collector.export import export_store

    header = (
        "graph,phase,batch_size,samples,energy_j,energy_source,duration_s,hardware,power_limit_w"
    )
    lines = [
        header,
        f"{LAYER},train,8,800,12.5,nvml-energy-counter,3.0,gpu-x,150",
        f"{LAYER},train,8,800,13.5,nvml-energy-counter,3.0,gpu-x,",
        f"{LAYER},train,8,800,12.5,nvml-energy-counter,3.0,gpu-x,0",
        f"{LAYER},train,8,800,12.5,nvml-energy-counter,3.0,gpu-x,many",
    ]
    (tmp_path / "runs.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(BadImport) as caught:
        _run([str(tmp_path / "runs.csv"), "--db", str(tmp_path / "a.db")])
    assert [str(p) for p in caught.value.problems] == [
        "runs.csv:4: power_limit_w='0' must be > 0",
        "runs.csv:5: power_limit_w='many' is not a number",
    ]
    (tmp_path / "runs.csv").write_text("\n".join(lines[:3]) + "\n")
    _run([str(tmp_path / "runs.csv"), "--db", str(tmp_path / "a.db")])
    record = dict(zip(header.split(","), next(csv.reader([lines[1]])), strict=True))
    (tmp_path / "runs.jsonl").write_text(
        json.dumps({**record, "energy_j": 11.0, "power_limit_w": 175.5}) + "\n"
    )
    _run([str(tmp_path / "runs.jsonl"), "--db", str(tmp_path / "a.db")])
    with MeasurementStore(tmp_path / "a.db") as store:
        limits = {r.energy_j: r.power_limit_w for r in store.rows()}
    assert limits == {12.5: 150.0, 13.5: None, 11.0: 175.5}
    assert export_store(tmp_path / "a.db", tmp_path / "out.csv") == 3
    with (tmp_path / "out.csv").open() as fh:
        exported = {float(r["energy_j"]): r["power_limit_w"] for r in csv.DictReader(fh)}
    assert exported == {12.5: "150.0", 13.5: "", 11.0: "175.5"}


def test_side_facts_are_imported_as_columns(tmp_path: Path) -> None:
    header = "graph,phase,batch_size,samples,energy_j,energy_source,duration_s,hardware,cpu_s,others_busy_cores"
    lines = [
        header,
        f"{LAYER},train,8,800,12.5,estimate-cpu-time,3.0,cpu-x,2.5,0.25",
        f"{LAYER},train,8,800,13.5,estimate-cpu-time,3.0,cpu-x,,",
    ]
    (tmp_path / "runs.csv").write_text("\n".join(lines) + "\n")
    _run([str(tmp_path / "runs.csv"), "--db", str(tmp_path / "a.db")])
    with MeasurementStore(tmp_path / "a.db") as store:
        facts = {r.energy_j: (r.cpu_s, r.others_busy_cores) for r in store.rows()}
    assert facts == {12.5: (2.5, 0.25), 13.5: (None, None)}
