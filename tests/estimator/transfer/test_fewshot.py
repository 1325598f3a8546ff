"""Few-shot calibration on real measurements: a GPU the transfer model never saw (the Zeus rows
of one board, the prior fitted on the other two), a handful of its rows, the rest to judge."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from estimator.publish import fit_and_publish
from estimator.service import PredictorRegistry
from estimator.transfer import artifact, calibrated
from estimator.transfer.calibrate import MAX_CONFIG_PHASES, few_shot_hardware
from estimator.transfer.cli import _lookup
from estimator.transfer.data import from_stores
from estimator.transfer.fewshot import DEFAULT_SIGMA, calibrate
from estimator.transfer.fit import fit_params, log_errors
from joulecast.errors import FailedPrecondition
from joulecast.graph import profile_graph
from joulecast.store import MeasurementStore

REPO = Path(__file__).parents[3]
ZEUS = REPO / "artifacts" / "measurements" / "zeus-nsdi23.db"
SAMPLE = REPO / "examples" / "sample_crnn.onnx"
HELD_OUT = "v100-pcie-32gb"
SENTIMENT = "zeus/sentiment140/bert_base_uncased/adamw"  # unknown padded length: never fitted


@pytest.fixture(scope="module")
def zeus() -> pd.DataFrame:
    return from_stores([ZEUS], _lookup, phases=("train",)).frame


@pytest.fixture(scope="module")
def prior(zeus) -> dict[str, float]:
    """The transfer model fitted without the held-out GPU (nor Sentiment140)."""
    return fit_params(zeus[(zeus["hardware"] != HELD_OUT) & (zeus["workload"] != SENTIMENT)])


def spread(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows at the board's highest power limit, batch sizes spread from least to most."""
    top = rows[rows["power_limit_w"] == rows["power_limit_w"].max()].sort_values("batch_size")
    return top.iloc[np.unique(np.linspace(0, len(top) - 1, min(n, len(top))).round().astype(int))]


def median_ape(params, rows: pd.DataFrame) -> float:
    return float(np.median(np.abs(np.expm1(log_errors(params, rows)["log_error_energy"]))))


def test_a_few_rows_of_each_workload_beat_the_zero_shot_transfer(zeus, prior) -> None:
    gpu = zeus[(zeus["hardware"] == HELD_OUT) & (zeus["workload"] != SENTIMENT)]
    rows = pd.concat([spread(part, 2) for _, part in gpu.groupby("workload")])
    others = gpu.drop(rows.index)
    fit = calibrate(rows, prior)
    assert len(rows) == 10 and len(fit.configurations) == 5
    assert fit.sigma_scores and fit.sigma in fit.sigma_scores  # chosen by leaving one out
    zero, few = median_ape(prior, others), median_ape(fit.params, others)
    assert few <= zero, (few, zero)
    # every row was answered without its workload, and its errors feed the interval
    assert fit.held_out["loco_j"].notna().all() and len(fit.loco_errors("train")) == 10


def test_rows_of_one_workload_stay_near_the_prior(zeus, prior) -> None:
    gpu = zeus[zeus["hardware"] == HELD_OUT]
    rows = spread(gpu[gpu["workload"].str.contains("imagenet")], 6)
    fit = calibrate(rows, prior)
    assert fit.sigma == DEFAULT_SIGMA and not fit.sigma_scores
    assert fit.held_out["loco_j"].isna().all()
    model = calibrated.build(
        fit, artifact.load(REPO / "artifacts"), hardware=HELD_OUT, gpu=HELD_OUT
    )
    # nothing held out: the interval is the transferred one, not a narrower guess
    assert model.bands["train"] == pytest.approx(
        calibrated.transferred_band(artifact.load(REPO / "artifacts"))
    )
    assert "test" not in model.bands and model.calibration["held_out"] == {}


@pytest.fixture()
def few_store(tmp_path: Path) -> Path:
    """Two rows of each workload of the RTX 6000 at its top power limit, with their graphs."""
    db = tmp_path / "few.db"
    with MeasurementStore(ZEUS, read_only=True) as src, MeasurementStore(db) as dst:
        rows = [r for r in src.rows(hardware="quadro-rtx6000") if r.power_limit_w == 260.0]
        by_workload: dict[str, list] = {}
        for row in rows:
            by_workload.setdefault(row.config_id.rsplit("/", 2)[0], []).append(row)
        picked = [r for group in by_workload.values() for r in (group[0], group[-1])]
        for row in picked:
            dst.put_graph(src.get_graph(row.graph_sha256))
        dst.put_rows([(row, ()) for row in picked])
    return db


@pytest.fixture()
def artifacts_dir(tmp_path: Path) -> Path:
    out = tmp_path / "artifacts"
    (out / "transfer").mkdir(parents=True)
    shutil.copy(artifact.path_in(REPO / "artifacts"), out / "transfer")
    return out


def test_fit_calibrates_a_catalogued_gpu_with_few_rows(few_store, artifacts_dir) -> None:
    assert few_shot_hardware(few_store, None, artifacts_dir) == "quadro-rtx6000"
    assert few_shot_hardware(ZEUS, "quadro-rtx6000", artifacts_dir) is None  # 224 rows
    # without the transfer model to calibrate, the per-hardware fit runs as it always did
    assert few_shot_hardware(few_store, None, artifacts_dir / "nowhere") is None
    assert MAX_CONFIG_PHASES > 12
    described = fit_and_publish(few_store, None, artifacts_dir)
    assert described.selected == {"train": "gpu-transfer-calibrated"}
    assert described.scores["loco"]["train"]["gpu-transfer-calibrated"]["n"] == 12
    registry = PredictorRegistry(artifacts_dir)
    answer = registry.predict(
        profile_graph(SAMPLE.read_bytes()), batch_size=64, samples=10_000, epochs=1,
        hardware="Quadro RTX 6000",
    )  # fmt: skip
    assert answer.tier == "calibrated" and answer.hardware == "quadro-rtx6000"
    assert answer.test is None and "calibrated on this GPU" in answer.warnings[0]
    assert "12 rows of 6 configurations" in answer.warnings[0]
    train = answer.train
    assert train is not None and train.energy_low_j < train.energy_j < train.energy_high_j
    assert train.energy_j == pytest.approx(train.power_w * train.duration_s)
    assert train.power_w <= 260.0 and train.predictor == "gpu-transfer-calibrated"
    assert [d.hardware for d in registry.describe()][-1] == "quadro-rtx6000"


def test_a_tampered_calibration_is_refused_and_the_rest_serves(few_store, artifacts_dir) -> None:
    fit_and_publish(few_store, None, artifacts_dir)
    path = calibrated.path_of(artifacts_dir, "quadro-rtx6000")
    model = calibrated.load(artifacts_dir, "quadro-rtx6000")
    assert model is not None and model.version == json.loads(path.read_text())["version"]
    body = json.loads(path.read_text())
    body["params"]["step_s"] *= 0.5
    path.write_text(json.dumps(body))
    with pytest.raises(FailedPrecondition, match="version hash"):
        calibrated.load(artifacts_dir, "quadro-rtx6000")
    registry = PredictorRegistry(artifacts_dir)  # logs it and answers as before
    answer = registry.predict(
        profile_graph(SAMPLE.read_bytes()), batch_size=64, samples=10_000, epochs=1,
        hardware="quadro-rtx6000",
    )  # fmt: skip
    assert answer.tier == "measured"  # the transfer model was fitted on this GPU's rows


def test_a_measured_predictor_keeps_answering_its_gpu(tmp_path: Path, few_store) -> None:
    out = tmp_path / "with-h200"
    shutil.copytree(REPO / "artifacts" / "predictors" / "h200", out / "predictors" / "h200")
    (out / "transfer").mkdir()
    shutil.copy(artifact.path_in(REPO / "artifacts"), out / "transfer")
    done = fit_and_publish(few_store, None, out)
    model = calibrated.load(out, done.hardware)
    calibrated.publish(replace(model, hardware="h200", gpu="h200"), out)
    registry = PredictorRegistry(out)
    answer = registry.predict(
        profile_graph(SAMPLE.read_bytes()), batch_size=8, samples=1578, epochs=1, hardware="h200"
    )
    assert answer.tier == "measured" and answer.test is not None


A40_ROWS = (
    ("cifar100", "shufflenetv2", "adadelta", (32, 256, 1024)),
    ("imagenet", "resnet50", "adadelta", (32, 128)),
    ("movielens-1m", "ncf", "adam", (256, 4096)),
)
SLOWER, LOWER_POWER = 1.4, 0.9
"""How far the rows below sit from the shipped model's answers for an A40: epochs 1.4 times
longer at 0.9 of the power (a board its spec sheet flatters)."""


def test_zeus_rows_of_a_gpu_nobody_fitted_import_then_calibrate_it(tmp_path, artifacts_dir) -> None:
    # Rows in Zeus's trace format of an A40, made here from the shipped model's own answers
    # (not measurements): the path a user's few Zeus-format rows of a new GPU take.
    from collector.zeus_workloads import find_workload, workload_graph
    from estimator.transfer.answer import RunCounts, estimate_with
    from estimator.transfer.gpu import GpuRates
    from joulecast.cli import main
    from joulecast.hardware import find_gpu

    model = artifact.load(artifacts_dir)
    rates = GpuRates.from_spec(find_gpu("a40"))
    lines = ["dataset,network,batch_size,optimizer,power_limit,time_per_epoch,average_power"]
    for dataset, network, optimizer, batches in A40_ROWS:
        workload = find_workload(dataset, network)
        profile = profile_graph(workload_graph(workload))
        for batch in batches:
            run = RunCounts(batch, workload.samples_per_epoch, 1, "tf32")
            est = estimate_with(model.params, (0.0, 0.0), rates, profile, run)
            time_s, power_w = est.duration_s * SLOWER, est.power_w * LOWER_POWER
            lines.append(f"{dataset},{network},{batch},{optimizer},300,{time_s},{power_w}")
    (tmp_path / "zeus").mkdir()
    (tmp_path / "zeus" / "summary_power_a40.csv").write_text("\n".join(lines) + "\n")
    db = tmp_path / "a40.db"
    assert main(["import", str(tmp_path / "zeus"), "--db", str(db)]) == 0
    with MeasurementStore(db, read_only=True) as store:
        assert {r.precision for r in store.rows()} == {"tf32"}
    described = fit_and_publish(db, None, artifacts_dir)
    assert described.selected == {"train": "gpu-transfer-calibrated"}
    # BERT, which no row holds, moves towards where the rows say the A40 sits
    bert = find_workload("squad", "bert_base_uncased")
    ask = {"batch_size": 16, "samples": bert.samples_per_epoch, "epochs": 1, "hardware": "a40"}
    profile = profile_graph(workload_graph(bert))
    spec_sheet = estimate_with(
        model.params, (0.0, 0.0), rates, profile, RunCounts(16, bert.samples_per_epoch, 1, "tf32")
    )
    truth_j = spec_sheet.energy_j * SLOWER * LOWER_POWER
    answer = PredictorRegistry(artifacts_dir).predict(profile, precision="tf32", **ask)
    assert answer.tier == "calibrated" and answer.precision == "tf32"
    assert abs(np.log(answer.train.energy_j / truth_j)) < abs(np.log(spec_sheet.energy_j / truth_j))


def test_estimated_rows_never_reach_the_transfer_model_or_a_calibration(
    few_store: Path, tmp_path: Path
) -> None:
    """Half the RTX 6000's rows copied as CPU-time estimates (ten times the energy): the
    transfer data, which the transfer model and every calibration are fitted on, leaves them
    out and counts them (the answers of both say energy_is_estimate false: this is their
    only guard)."""
    with MeasurementStore(few_store, read_only=True) as store:
        rows = store.rows()
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    mixed = tmp_path / "mixed.db"
    with MeasurementStore(mixed) as store:
        for graph in graphs.values():
            store.put_graph(graph)
        store.put_rows([(r, ()) for r in rows])
        store.put_rows(
            [
                (
                    replace(
                        r,
                        run_key=r.run_key + "/estimated",
                        repeat=r.repeat + 9,
                        energy_j=r.energy_j * 10,
                        energy_source="estimate-cpu-time",
                        energy_is_estimate=True,
                    ),
                    (),
                )
                for r in rows[::2]
            ]
        )
    data = from_stores([mixed], _lookup)
    assert data.skipped.get("estimated energy") == len(rows[::2])
    assert len(data.frame) == len(from_stores([few_store], _lookup).frame)
    assert data.frame["energy_j"].max() == from_stores([few_store], _lookup).frame["energy_j"].max()
