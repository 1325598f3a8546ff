"""Import a slice of the real Getzner et al. RTX 2080 Ti files (first 30 rows of each)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import onnx
import pytest
import torch

from collector.importer import import_records
from joulecast.graph import profile_graph
from joulecast.store import MeasurementStore
from joulecast.weightless import export_weightless, is_weightless

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "external" / "getzner2023"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present")
LIMIT = 30


def _converter():
    spec = importlib.util.spec_from_file_location(
        "getzner_convert", ROOT / "examples/getzner/convert.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("getzner") / "slice.db"
    result = import_records(_converter().records(DATA, LIMIT), db)
    assert result.problems == []
    assert result.imported == 6 * LIMIT
    return db


def _raw_rows() -> dict[str, dict[str, str]]:
    rows = {}
    for file in sorted(DATA.glob("*-raw.csv")):
        with file.open(newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh)):
                if n >= LIMIT:
                    break
                rows[row["run_id"]] = row
    return rows


def test_rows_carry_gpu_energy_in_joules_and_samples(store_path: Path) -> None:
    raw = _raw_rows()
    with MeasurementStore(store_path) as store:
        rows = store.rows()
    assert len(rows) == len(raw) == 6 * LIMIT
    for row in rows:
        run_id = row.notes.split("run_id=")[1].split(";")[0]
        src = raw[run_id]
        fields = dict(p.split(":", 1) for p in src["project_name"].split(","))
        assert row.hardware == "rtx2080ti" and row.phase == "test" and row.epochs == 1
        assert row.energy_source == "codecarbon-pynvml" and row.energy_is_estimate is False
        assert row.energy_j == pytest.approx(float(src["gpu_energy"]) * 3.6e6)
        assert row.codecarbon_energy_j == pytest.approx(float(src["energy_consumed"]) * 3.6e6)
        assert row.samples == int(fields["forward_passes"]) * int(fields["batch_size"])
        assert row.batch_size == int(fields["batch_size"])
        assert row.repeat == int(fields["rep_no"])
        assert row.duration_s == pytest.approx(float(src["duration"]))
    # the three repeats of a configuration share its config_id
    by_config: dict[str, set[int]] = {}
    for row in rows:
        by_config.setdefault(row.config_id, set()).add(row.repeat)
    assert all(reps == {1, 2, 3} for reps in by_config.values())


def test_graphs_weightless_and_flops_from_the_profiler(store_path: Path) -> None:
    with MeasurementStore(store_path) as store:
        rows = store.rows()
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    assert all(g is not None and len(g) < 2000 for g in graphs.values())
    for row in rows:
        graph = graphs[row.graph_sha256]
        assert is_weightless(onnx.load_model_from_string(graph))
        profile = profile_graph(graph)
        assert (row.flops_forward, row.flops_train, row.params) == (
            profile.flops_forward,
            profile.flops_train,
            profile.params,
        )
    assert {r.family for r in rows} == {"mlp", "cnn", "other"}


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


def test_importing_twice_adds_nothing(store_path: Path) -> None:
    with MeasurementStore(store_path) as store:
        before = store.count()
    again = import_records(_converter().records(DATA, LIMIT), store_path)
    assert (again.imported, again.already_present, again.written) == (0, 6 * LIMIT, False)
    with MeasurementStore(store_path) as store:
        assert store.count() == before
