"""The shipped transfer model obeys physics for every catalogued GPU, batch sizes 1-4096, the
six Zeus workloads and the power limits each board accepts; its scores are those it claims."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from estimator.transfer import artifact
from estimator.transfer.data import gpu_of, precision_of, query_arrays, work_of
from estimator.transfer.gpu import GpuRates
from estimator.transfer.model import predict
from joulecast.graph import profile_graph
from joulecast.hardware import load_catalog
from joulecast.measurement import PRECISIONS
from joulecast.store import MeasurementStore

REPO = Path(__file__).parents[3]
ZEUS = REPO / "artifacts" / "measurements" / "zeus-nsdi23.db"
BATCHES = [2**k for k in range(13)]


@pytest.fixture(scope="module")
def model() -> artifact.TransferModel:
    loaded = artifact.load(REPO / "artifacts")
    assert loaded is not None
    return loaded


@pytest.fixture(scope="module")
def workloads() -> dict[str, dict[str, float]]:
    with MeasurementStore(ZEUS, read_only=True) as store:
        shas = {r.graph_sha256 for r in store.rows() if r.graph_sha256}
        graphs = {sha: store.get_graph(sha) for sha in shas}
    assert len(graphs) == 6
    return {sha: work_of(profile_graph(g)) for sha, g in graphs.items() if g}


def test_no_answer_breaks_physics_on_any_catalogued_gpu(model, workloads) -> None:
    records = []
    for spec in load_catalog():
        rates = GpuRates.from_spec(spec)
        low, high = rates.limit_range_w()
        for work in workloads.values():
            for batch in BATCHES:
                limits = (low, rates.power_limit_w, high)
                for limit, precision in itertools.product(limits, PRECISIONS):
                    records.append(
                        {"gpu": spec.id, **work, "train": 1.0, "batch_size": float(batch),
                         "samples": 100_000.0, "epochs": 1.0, "power_limit_w": limit,
                         **precision_of(precision), **gpu_of(rates)}
                    )  # fmt: skip
    frame = pd.DataFrame(records)
    out = predict(model.params, query_arrays(frame))
    fp32_peak = np.maximum(frame["conv_flops"], frame["fp32_flops"])
    peak = np.where(frame["amp"] > 0, frame["amp_flops"], fp32_peak)
    idle = model.params["idle_share"] * frame["tdp_w"].to_numpy()
    limit = frame["power_limit_w"].to_numpy()
    assert len(frame) == len(load_catalog()) * 6 * len(BATCHES) * 3 * len(PRECISIONS)
    assert np.all(np.isfinite(out.energy_j)) and np.all(out.energy_j > 0)
    assert np.all(out.flop_rate < peak)
    assert np.all(out.power_w >= idle * (1 - 1e-9))
    assert np.all(out.power_w <= limit * (1 + 1e-9))


def test_the_manifest_scores_are_the_cross_validation_it_shipped_with(model) -> None:
    scores = pd.read_csv(REPO / "artifacts" / "report-transfer" / "scores.csv")
    for row in scores.to_dict(orient="records"):
        claimed = model.scores[f"{row['scheme']}/{row['group']}"]
        assert claimed["transfer_median_ape"] == pytest.approx(row["transfer_median_ape"], abs=1e-4)
    assert set(model.fitted_on["gpus"]) == {"p100-pcie-16gb", "v100-pcie-32gb", "quadro-rtx6000"}


def test_the_report_splits_a_gpu_held_out_by_the_source_of_its_rows() -> None:
    """The RTX 6000's leave-one-GPU-out median is mostly EC-NAS's 2,783 runs of one workload:
    the shipped report also scores its Zeus rows apart, from the cross-validation it shipped."""
    from estimator.transfer.evaluate import CrossValidation
    from estimator.transfer.report import sources_section

    folder = REPO / "artifacts" / "report-transfer"
    cv = CrossValidation("logo", pd.read_csv(folder / "cv_logo.csv"))
    lines = sources_section(cv)
    report = (folder / "REPORT.md").read_text()
    assert lines and all(line in report for line in lines)
    zeus = next(line for line in lines if line.startswith("| quadro-rtx6000, zeus rows |"))
    assert zeus.split(" | ")[1:3] == ["370", "29.5 %"]
