"""EC-NAS-Bench import: real results.json files, rebuilt graphs, a real SQLite store."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import onnx
import pytest

from collector import ecnas
from joulecast.cli import main
from joulecast.graph import profile_graph
from joulecast.measurement import is_estimate, source_problem
from joulecast.store import MeasurementStore
from joulecast.weightless import is_weightless

BENCH = Path(__file__).parent.parent.parent / "data" / "ecnas" / "bench"
RESULTS = BENCH / "train_model_results" / "energy"
REPEATED = "e773a7a186b03b0957d57fed0f4d014a"
UNRELIABLE = "045ee9b9b9d744e93757c6a938bee0c2"


def _run_file(space: str, arch: str, repeat: int = 1) -> Path:
    return RESULTS / space / "4_epochs" / arch[:2] / arch / f"repeat_{repeat}" / "results.json"


def _by_hand(path: Path) -> float:
    """The documented definition, computed straight from the JSON fields."""
    data = json.loads(path.read_text())
    evals = sorted(data["evaluation_results"], key=lambda e: e["epochs"])

    def seconds(e: dict) -> float:
        fmt = "%Y-%m-%d %H:%M:%S"
        start = datetime.strptime(e["start_emission"], fmt)
        return (datetime.strptime(e["stop_emission"], fmt) - start).total_seconds()

    segments_s = sum(seconds(e) for e in evals)
    cpu_w = sum(data["avg_power_usages:"]["cpu"]["avg_power_usages (W)"][0])
    gpu_cpu_j = evals[-1]["energy (kWh)"] * 3.6e6 / 1.59
    train_s = evals[-1]["training_time"]
    return gpu_cpu_j - cpu_w * segments_s - 66.0 * (segments_s - train_s)


def test_derivation_follows_the_documented_definition() -> None:
    path = _run_file("4V9E", REPEATED)
    run = ecnas.read_run(path)
    d = ecnas.derive(run)
    assert d.energy_j == pytest.approx(_by_hand(path), rel=1e-12)
    assert (d.epochs, d.steps, d.samples_per_epoch) == (4, 625, 40_000)
    assert d.unreliable is None
    assert ecnas.OVERHEAD_GPU_POWER_W < d.step_power_w < ecnas.BOARD_POWER_LIMIT_W
    # the whole-run mean power holds graph building and evaluations: it reads lower
    assert d.naive_energy_j < d.energy_j
    # carbontracker's kWh include PUE 1.59 and the CPU: never the GPU energy itself
    assert d.energy_j < run.total_kwh * 3.6e6
    assert "PUE 1.59 removed" in d.notes()


def test_a_run_whose_meters_disagree_is_unreliable() -> None:
    d = ecnas.derive(ecnas.read_run(_run_file("5V9E", UNRELIABLE)))
    assert d.unreliable is not None and "outside the training segments" in d.unreliable
    assert d.outside_gpu_power_w > ecnas.BOARD_POWER_LIMIT_W * 1.05


def test_impossible_training_power_is_unreliable() -> None:
    data = json.loads(_run_file("5V9E", REPEATED).read_text())
    data["evaluation_results"][-1]["training_time"] = 10.0  # same energy in 10 s: > 273 W
    d = ecnas.derive(ecnas.parse_run(data))
    assert d.unreliable is not None and "derived training power" in d.unreliable


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d.pop("trainable_params"), "missing field 'trainable_params'"),
        (lambda d: d["evaluation_results"][0].update(start_emission="yesterday"), "timestamp"),
        (lambda d: d["avg_power_usages:"]["gpu"].update(devices=["a", "b"]), "one GPU"),
        (lambda d: d["evaluation_results"][-1].update(training_time=float("nan")), "finite"),
    ],
)
def test_malformed_runs_say_what_is_wrong(edit, words) -> None:
    data = json.loads(_run_file("5V9E", REPEATED).read_text())
    edit(data)
    with pytest.raises(ecnas.RunError, match=words):
        ecnas.derive(ecnas.parse_run(data))


def test_carbontracker_nvml_is_a_measured_source() -> None:
    assert source_problem("carbontracker-nvml") is None
    assert not is_estimate("carbontracker-nvml")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    db = tmp_path_factory.mktemp("ecnas") / "m.db"
    assert main(["import", str(BENCH), "--db", str(db), "--json", "--jobs", "2"]) == 0
    return db, {}


def test_import_stores_measured_train_rows_with_their_graphs(imported, capsys) -> None:
    db, _ = imported
    with MeasurementStore(db) as store:
        rows = store.rows()
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    assert len(rows) == 6  # 7 runs, one dropped
    for row in rows:
        assert (row.hardware, row.phase, row.family) == ("quadro-rtx6000", "train", "cnn")
        assert (row.batch_size, row.samples, row.epochs) == (256, 40_000, 4)
        assert row.energy_source == "carbontracker-nvml" and row.energy_is_estimate is False
        assert row.device_name in ("NVIDIA Quadro RTX 6000", "Quadro RTX 6000")
        assert "PUE 1.59 removed" in (row.notes or "")
        assert 60.0 < row.power_mean_w < 273.0
        assert row.energy_j == pytest.approx(row.power_mean_w * row.duration_s)
    by_config: dict[str, list] = {}
    for row in rows:
        by_config.setdefault(row.config_id, []).append(row)
    repeated = by_config[f"ecnas/{REPEATED}/b256"]
    assert len(repeated) == 4  # 3 repeats of 4V9E + 1 of 5V9E: one configuration
    assert len({r.run_key for r in repeated}) == 4
    assert UNRELIABLE not in "".join(by_config)
    for row in rows:
        run = ecnas.read_run(_run_file(row.variant, row.config_id.split("/")[1], row.repeat + 1))
        assert row.energy_j == pytest.approx(ecnas.derive(run).energy_j)
        graph = graphs[row.graph_sha256]
        assert is_weightless(onnx.load_model_from_string(graph))
        profile = profile_graph(graph)
        assert profile.params == row.params == run.trainable_params
        assert profile.warnings == ()


def test_import_reports_drops_and_is_idempotent(imported, capsys) -> None:
    db, _ = imported
    capsys.readouterr()
    assert main(["import", str(BENCH), "--db", str(db), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["imported"], result["already_present"], result["dropped"]) == (0, 6, 1)
    assert UNRELIABLE in result["dropped_runs"][0]
    assert result["runs"] == 7 and result["architectures"] == 3
    assert 40.0 < result["overhead_gpu_power_w_pooled"] < 90.0


def test_a_graph_that_does_not_match_the_run_is_refused(tmp_path: Path, capsys) -> None:
    bench = tmp_path / "bench"
    shutil.copytree(BENCH, bench)
    path = bench / _run_file("5V9E", REPEATED).relative_to(BENCH)
    data = json.loads(path.read_text())
    data["trainable_params"] += 1
    path.write_text(json.dumps(data))
    broken = bench / _run_file("4V9E", REPEATED, 2).relative_to(BENCH)
    broken.write_text("{not json")
    db = tmp_path / "m.db"
    assert main(["import", str(bench), "--db", str(db)]) == 2
    text = capsys.readouterr().err
    assert "2 bad record(s), nothing imported" in text
    assert "rebuilt graph has 445706 parameters, the run trained 445707" in text
    assert "repeat_2/results.json: not JSON" in text
    assert not db.exists() or MeasurementStore(db).count() == 0
    assert main(["import", str(bench), "--db", str(db), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert sum(x.startswith("skipped ") for x in lines) == 2
    assert sum(x.startswith("dropped ") for x in lines) == 1
    assert "imported 4 row(s)" in out
