"""--region / --price-per-kwh: gCO2eq and cost per phase from CodeCarbon's energy-mix data."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import codecarbon
import grpc
import pytest

from client.format import format_prediction
from client.remote import EstimatorClient, RemoteInvalidArgument
from estimator.description import PredictorDescription
from estimator.service import EnergyPrediction, PhaseEstimate
from joulecast.carbon import J_PER_KWH
from joulecast.measurement import is_estimate
from rpc.generated import estimator_pb2 as pb


class FixedRegistry:
    """Energy = 1e-9 J per FLOP from ``source`` (a meter, or an estimate-... label)."""

    default_hardware = "cpu-test"

    def __init__(self, source: str) -> None:
        self.source = source

    def predict(self, profile: Any, *, samples: int, epochs: int, **_: Any) -> EnergyPrediction:
        def phase(e: float) -> PhaseEstimate:
            return PhaseEstimate(e, 0.5 * e, 2 * e, 1.0, "fixed")

        return EnergyPrediction(
            train=phase(1e-9 * profile.flops_train * samples * epochs),
            test=phase(1e-9 * profile.flops_forward * samples),
            hardware="cpu-test",
            predictor_version="v1",
            energy_source=self.source,
            energy_is_estimate=is_estimate(self.source),
            warnings=(),
        )

    def reload(self, hardware: str) -> str:
        return "v1"

    def describe(self) -> list[PredictorDescription]:
        return []


ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "examples" / "sample_crnn.onnx").read_bytes()
MIX = Path(codecarbon.__file__).parent / "data" / "private_infra" / "global_energy_mix.json"


@pytest.fixture(scope="module")
def mix() -> dict:
    """CodeCarbon's own file, read here independently of joulecast.carbon."""
    return json.loads(MIX.read_text())


def test_ratio_between_regions_is_the_ratio_of_intensities(start_server, mix) -> None:
    served = start_server()
    with EstimatorClient(served.address) as client:
        fra = client.predict(SAMPLE, region="FRA").as_dict()
        deu = client.predict(SAMPLE, region="deu").as_dict()  # any case
        plain = client.predict(SAMPLE).as_dict()
    expected = mix["DEU"]["carbon_intensity"] / mix["FRA"]["carbon_intensity"]
    for phase in ("train", "test"):
        assert fra[phase]["energy_j"] == plain[phase]["energy_j"]  # carbon changes no energy
        for key in ("co2_g", "co2_low_g", "co2_high_g"):
            assert math.isclose(deu[phase][key] / fra[phase][key], expected, rel_tol=1e-12)
        kwh = fra[phase]["energy_j"] / J_PER_KWH
        assert math.isclose(fra[phase]["energy_kwh"], kwh, rel_tol=1e-12)
        assert math.isclose(
            fra[phase]["co2_g"], kwh * mix["FRA"]["carbon_intensity"], rel_tol=1e-12
        )
        assert fra[phase]["co2_low_g"] < fra[phase]["co2_g"] < fra[phase]["co2_high_g"]
        assert "cost" not in fra[phase]
    assert fra["grid"] == {
        "region": "FRA",
        "region_name": mix["FRA"]["country_name"],
        "co2_g_per_kwh": mix["FRA"]["carbon_intensity"],
        "year": mix["FRA"]["year"],
        "source": f"CodeCarbon {codecarbon.__version__} data/private_infra/global_energy_mix.json",
    }
    # Nothing asked, nothing added: the old answer, key for key.
    assert "grid" not in plain and "co2_g" not in plain["train"]
    assert "energy_kwh" not in plain["train"]


def test_price_gives_a_cost_with_or_without_region(start_server) -> None:
    served = start_server()
    with EstimatorClient(served.address) as client:
        priced = client.predict(SAMPLE, price_per_kwh=0.25).as_dict()
        both = client.predict(SAMPLE, price_per_kwh=0.25, region="FRA", stream=True).as_dict()
    for answer in (priced, both):
        train = answer["train"]
        assert math.isclose(train["cost"], train["energy_kwh"] * 0.25, rel_tol=1e-12)
        assert train["cost_low"] < train["cost"] < train["cost_high"]
        assert answer["price_per_kwh"] == 0.25
    assert "co2_g" not in priced["train"] and "grid" not in priced
    assert both["grid"]["region"] == "FRA" and both["train"]["co2_g"] > 0


def test_carbon_of_estimated_energy_says_it_is_an_estimate(start_server) -> None:
    served = start_server(registry=FixedRegistry("estimate-tdp"))
    with EstimatorClient(served.address) as client:
        answer = client.predict(SAMPLE, region="FRA")
    assert answer.energy_is_estimate is True
    assert any("carbon and cost" in w and "estimate" in w for w in answer.warnings)
    table = format_prediction(answer, "sample_crnn.onnx")
    assert "gCO2eq" in table and "ESTIMATED     carbon" in table
    # rows of its own hardware, but estimated: the table must not call the answer "measured"
    assert answer.tier == "measured" and "measured" not in table.split("energy source")[0]
    served = start_server(registry=FixedRegistry("rapl"))
    with EstimatorClient(served.address) as client:
        measured = client.predict(SAMPLE, region="FRA")
    assert not any("carbon and cost" in w for w in measured.warnings)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"region": "XYZ"}, "joulecast regions"),
        ({"region": ""}, "unknown region"),
        ({"price_per_kwh": -1.0}, "price_per_kwh"),
        ({"price_per_kwh": float("nan")}, "price_per_kwh"),
    ],
)
def test_bad_region_or_price_is_invalid_argument(start_server, rpc_error, options, needle) -> None:
    served = start_server()
    request = pb.PredictEnergyRequest(
        onnx_model=SAMPLE, batch_size=8, samples=100, epochs=1, **options
    )
    code, details = rpc_error(served.stub.PredictEnergy, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in details
    with EstimatorClient(served.address) as client, pytest.raises(RemoteInvalidArgument):
        client.predict(SAMPLE, **options)


def test_regions_command_lists_codecarbon_codes(mix) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "joulecast.cli", "regions", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    listed = {g["region"]: g["co2_g_per_kwh"] for g in json.loads(done.stdout)}
    assert listed == {code: entry["carbon_intensity"] for code, entry in mix.items()}
