"""Import real Getzner et al. rows (CPU inference, RAPL) and drop the runs the slurm logs flag.

tests/data/getzner2023 holds the first rows of two of the authors' files with the matching
lines of their cluster logs, copied unchanged: ``00_linear`` (log prints ``config/rep``; row 5,
config 1 rep 3, has RAPL errors) and ``02_conv2d`` (tqdm log without repeat numbers; the errors
fall in row 7, config 2 rep 2, by time of day). Both flagged rows read about half the normal
package power, as the authors' bad runs do.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import onnx
import pytest
import torch

from collector.importer import import_records
from joulecast.graph import profile_graph
from joulecast.store import MeasurementStore
from joulecast.weightless import export_weightless, is_weightless

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "getzner2023"
FLAGGED = {("00_linear-raw.csv", 5), ("02_conv2d-raw.csv", 7)}


def _converter():
    if "getzner_convert" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "getzner_convert", ROOT / "examples/getzner/convert.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["getzner_convert"] = module
        spec.loader.exec_module(module)
    return sys.modules["getzner_convert"]


def _raw_rows() -> dict[str, tuple[str, int, dict[str, str]]]:
    rows = {}
    for file in sorted(DATA.glob("*-raw.csv")):
        with file.open(newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh)):
                rows[row["run_id"]] = (file.name, n, row)
    return rows


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    db = tmp_path_factory.mktemp("getzner") / "slice.db"
    convert = _converter()
    dropped = convert.Dropped()
    result = import_records(convert.records(DATA, None, dropped), db)
    assert result.problems == []
    return db, dropped


def test_flagged_runs_are_dropped_and_counted(imported) -> None:
    db, dropped = imported
    raw = _raw_rows()
    with MeasurementStore(db) as store:
        rows = store.rows()
    kept = {raw[r.notes.split("run_id=")[1].split(";")[0]][:2] for r in rows}
    everything = {(f, n) for f, n, _ in raw.values()}
    assert kept == everything - FLAGGED
    assert dropped.to_json()["total"] == 2 and dropped.unplaced == []
    flagged_power = [float(row["cpu_power"]) for f, n, row in raw.values() if (f, n) in FLAGGED]
    assert all(p < 45 for p in flagged_power)  # the bad readings: about half of ~75 W


def test_both_log_formats_place_errors_by_rule_and_by_time() -> None:
    convert = _converter()
    for name, expected in (("00_linear", {5}), ("02_conv2d", {7})):
        with (DATA / f"{name}-raw.csv").open(newline="") as fh:
            raws = list(csv.DictReader(fh))
        windows = [
            convert.Window(convert._time_of_day(r["timestamp"]), float(r["duration"])) for r in raws
        ]
        lines = (DATA / f"{name}-slurm-log.out").read_text().splitlines()
        assert convert.flagged_rows(lines, windows).rows == expected
    # without the log's error lines nothing is flagged
    lines = [ln for ln in (DATA / "00_linear-slurm-log.out").read_text().splitlines()]
    clean = [ln for ln in lines if "codecarbon ERROR" not in ln]
    assert convert.flagged_rows(clean, windows).rows == set()


def test_power_outside_the_package_range_is_dropped() -> None:
    convert = _converter()
    no_flags = convert.Flags()
    # cpu_power of real rows of 02_linear (0.0 W) and 00_maxpool2d (982.7 W), and a normal one
    assert "<= 0 W" in convert.drop_reasons({"cpu_power": "0.0"}, 0, no_flags)
    assert "TDP" in convert.drop_reasons({"cpu_power": "982.737251007692"}, 0, no_flags)
    assert convert.drop_reasons({"cpu_power": "75.44121746584486"}, 0, no_flags) is None


def test_rows_carry_measured_cpu_energy_never_gpu(imported) -> None:
    db, _ = imported
    raw = _raw_rows()
    with MeasurementStore(db) as store:
        rows = store.rows()
    assert rows
    for row in rows:
        _, _, src = raw[row.notes.split("run_id=")[1].split(";")[0]]
        fields = dict(p.split(":", 1) for p in src["project_name"].split(","))
        assert row.hardware == "xeon-gold-5120-2c" and row.phase == "test" and row.epochs == 1
        assert row.device == "cpu" and "Xeon Gold 5120" in row.device_name
        assert row.energy_source == "codecarbon-intel-rapl" and row.energy_is_estimate is False
        assert row.energy_j == pytest.approx(float(src["cpu_energy"]) * 3.6e6)
        assert row.energy_j != pytest.approx(float(src["gpu_energy"]) * 3.6e6)
        assert "shared" in row.notes and "idle" in row.notes
        assert row.samples == int(fields["forward_passes"]) * int(fields["batch_size"])
        assert row.repeat == int(fields["rep_no"])
        assert 50 < row.energy_j / row.duration_s <= 105


def test_graphs_weightless_and_flops_from_the_profiler(imported) -> None:
    db, _ = imported
    with MeasurementStore(db) as store:
        rows = store.rows()
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    for row in rows:
        graph = graphs[row.graph_sha256]
        assert is_weightless(onnx.load_model_from_string(graph))
        profile = profile_graph(graph)
        assert (row.flops_forward, row.params) == (profile.flops_forward, profile.params)


@pytest.mark.parametrize(
    ("descriptor", "module", "shape"),
    [
        (
            "Linear(in_features=4645,out_features=1920)",
            lambda: torch.nn.Linear(4645, 1920),
            (2, 4645),
        ),
        (
            "Conv2d(in_channels=80,out_channels=29,kernel_size=7,stride=1,padding=2,image_size=127)",
            lambda: torch.nn.Conv2d(80, 29, 7, 1, 2),
            (2, 80, 127, 127),
        ),
        (
            "MaxPool2d(in_channels=493,kernel_size=6,stride=5,padding=3,image_size=152)",
            lambda: torch.nn.MaxPool2d(6, 5, 3),
            (2, 493, 152, 152),
        ),
    ],
)
def test_descriptor_graph_profiles_like_a_torch_export(descriptor, module, shape) -> None:
    from collector.import_layers import build_descriptor

    exported = export_weightless(module(), torch.zeros(shape))
    assert profile_graph(build_descriptor(descriptor)) == profile_graph(exported)


def test_importing_twice_adds_nothing(imported) -> None:
    db, _ = imported
    with MeasurementStore(db) as store:
        before = store.count()
    again = import_records(_converter().records(DATA), db)
    assert (again.imported, again.written) == (0, False)
    with MeasurementStore(db) as store:
        assert store.count() == before
