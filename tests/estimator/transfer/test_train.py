"""Cross-validation, bands and the published file of the transfer model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from estimator.transfer import artifact
from estimator.transfer.evaluate import cross_validate, scores
from estimator.transfer.files import write_versioned
from estimator.transfer.model import LEGACY_DEFAULTS
from estimator.transfer.train import train
from joulecast.errors import FailedPrecondition
from tests.estimator.transfer.conftest import synthetic_rows


@pytest.fixture(scope="module")
def trained(profiles):
    return train(synthetic_rows(profiles), sources={"nvml-energy-counter": 1}, inner=False)


def test_every_gpu_and_workload_is_held_out_once_beside_both_baselines(trained, profiles) -> None:
    table = trained.scores
    logo = table[table["scheme"] == "logo"]
    assert set(logo["group"]) == {"p100-pcie-16gb", "v100-pcie-32gb", "quadro-rtx6000",
                                  "a100-sxm4-40gb", "all"}  # fmt: skip
    lowo = table[table["scheme"] == "lowo"]
    assert set(lowo["group"]) == {*profiles, "all"}
    # On rows the model itself made, it beats a constant J/FLOP on every held-out GPU.
    per_gpu = logo[logo["group"] != "all"]
    assert (per_gpu["transfer_median_ape"] < per_gpu["joules-per-flop_median_ape"]).all()
    assert (per_gpu["transfer_median_ape"] < 0.1).all()
    for scheme, cv in trained.cv.items():
        held = cv.predictions
        assert held["held_out"].nunique() == (4 if scheme == "logo" else len(profiles))
        assert (held["low_j"] <= held["transfer_j"]).all()
        assert (held["transfer_j"] <= held["high_j"]).all()


def test_nested_bands_are_sized_without_the_held_out_group(profiles) -> None:
    frame = synthetic_rows(profiles, gpus=("p100-pcie-16gb", "v100-pcie-32gb", "a100-sxm4-40gb"))
    cv = cross_validate(frame, "logo", inner=True)
    table = scores(cv)
    overall = table[table["group"] == "all"].iloc[0]
    assert 0.5 <= overall["coverage90"] <= 1.0
    widths = cv.predictions.groupby("held_out").apply(lambda g: (g.high_j / g.low_j).median())
    assert widths.nunique() == 3  # each fold its own band, from its own training groups


def test_the_published_file_round_trips_and_refuses_an_edit(trained, tmp_path: Path) -> None:
    model = trained.model
    path = artifact.publish(model, tmp_path)
    back = artifact.load(tmp_path)
    assert back is not None and back.version == model.version
    assert back.params == pytest.approx(model.params)
    assert set(back.bands) == {"logo", "lowo"}
    body = json.loads(path.read_text())
    body["params"]["eff_conv"] = float(np.clip(body["params"]["eff_conv"] * 1.5, 0, 1))
    path.write_text(json.dumps(body))
    with pytest.raises(FailedPrecondition, match="version hash"):
        artifact.load(tmp_path)
    assert artifact.load(tmp_path / "nowhere") is None


def test_a_file_written_before_a_parameter_existed_loads_as_it_answered(
    trained, tmp_path: Path
) -> None:
    # A file of the schema before eff_amp: every other parameter, hashed as that code hashed it.
    old_params = {k: v for k, v in trained.model.params.items() if k not in LEGACY_DEFAULTS}
    content = {**trained.model.content(), "params": old_params}
    path = write_versioned(artifact.path_in(tmp_path), content)
    old_version = json.loads(path.read_text())["version"]
    back = artifact.load(tmp_path)
    assert back is not None and back.version == old_version
    assert back.params["eff_amp"] == LEGACY_DEFAULTS["eff_amp"]
    # Written back unchanged, it is the same file; fitted away from the legacy value, a new one.
    assert artifact.publish(back, tmp_path / "again").read_text() == path.read_text()
    moved = artifact.TransferModel({**back.params, "eff_amp": 0.25}, back.bands)
    assert moved.version != old_version
    assert artifact.load(artifact.publish(moved, tmp_path / "moved").parents[1]) == moved


def test_too_few_gpus_are_refused(profiles) -> None:
    with pytest.raises(ValueError, match="at least 2 GPUs"):
        train(synthetic_rows(profiles, gpus=("v100-pcie-32gb",)), inner=False)


def test_a_gpu_measured_by_two_sources_is_scored_per_source() -> None:
    from estimator.transfer.evaluate import CrossValidation, source_scores

    def rows(gpu: str, workload: str, ratios: list[float]) -> pd.DataFrame:
        measured = np.linspace(100.0, 200.0, len(ratios))
        return pd.DataFrame(
            {
                "held_out": gpu,
                "workload": workload,
                "measured_j": measured,
                "transfer_j": measured * ratios,
                "low_j": measured * np.array(ratios) / 2,  # the answer's interval, x4 wide
                "high_j": measured * np.array(ratios) * 2,
                **{f"{b}_j": measured * 2 for b in ("joules-per-flop", "tdp-over-peak")},
            }
        )

    frame = pd.concat(
        [
            rows("rtx", "ecnas-bench", [1.1] * 9),
            rows("rtx", "zeus/ncf", [1.5, 3.0, 1.4]),
            rows("p100", "zeus/ncf", [1.2, 1.2]),
        ],
        ignore_index=True,
    )
    table = source_scores(CrossValidation("logo", frame)).set_index("group")
    assert list(table.index) == ["rtx, ecnas-bench rows", "rtx, zeus rows"]  # p100: one source
    assert table.loc["rtx, zeus rows", "n"] == 3
    assert table.loc["rtx, zeus rows", "transfer_median_ape"] == pytest.approx(0.5)
    assert table.loc["rtx, zeus rows", "coverage90"] == pytest.approx(2 / 3)
    assert table.loc["rtx, ecnas-bench rows", "transfer_median_ape"] == pytest.approx(0.1)
