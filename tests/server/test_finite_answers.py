"""Finite questions get finite answers: a cost or carbon past the double range is refused with
a reason (never ``inf``), and a price of -0.0 costs +0.0."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import grpc

from rpc.generated import estimator_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "examples" / "sample_crnn.onnx").read_bytes()


def _request(**options: Any) -> pb.PredictEnergyRequest:
    fields = {"batch_size": 8, "samples": 1578, "epochs": 1, **options}
    return pb.PredictEnergyRequest(onnx_model=SAMPLE, **fields)


def test_a_cost_past_the_double_range_is_refused(start_server, rpc_error) -> None:
    served = start_server(profile_workers=0)
    code, details = rpc_error(
        served.stub.PredictEnergy,
        _request(samples=10**12, epochs=10**5, price_per_kwh=1e300),
        timeout=30,
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "train phase's cost exceeds the range of a double" in details
    reply = served.stub.PredictEnergy(
        _request(samples=10**12, epochs=10**5, price_per_kwh=1e250, region="FRA"), timeout=30
    )
    numbers = [reply.price_per_kwh]
    for phase in (reply.train, reply.test):
        numbers += [phase.energy_j, phase.energy_high_j]
        footprint = phase.footprint
        numbers += [footprint.cost, footprint.cost_high, footprint.co2_g, footprint.co2_high_g]
    assert all(math.isfinite(n) and n > 0 for n in numbers), numbers


def test_a_price_of_minus_zero_costs_plus_zero(start_server) -> None:
    served = start_server(profile_workers=0)
    reply = served.stub.PredictEnergy(_request(price_per_kwh=-0.0), timeout=30)
    assert reply.HasField("price_per_kwh")
    for number in (
        reply.price_per_kwh,
        reply.train.footprint.cost,
        reply.train.footprint.cost_low,
        reply.test.footprint.cost_high,
    ):
        assert number == 0.0 and math.copysign(1.0, number) == 1.0
