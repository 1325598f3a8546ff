"""Call and stream slots are shared out by client host: one host never holds them all."""

from __future__ import annotations

import contextlib
import threading

import grpc
import pytest

from joulecast.errors import ResourceLimit
from joulecast.store import MeasurementStore
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb
from server.servicer import CallGate, peer_host


def test_peer_host_drops_the_port_only() -> None:
    assert peer_host("ipv4:10.0.0.5:5123") == "ipv4:10.0.0.5"
    assert peer_host("ipv6:[::1]:5123") == "ipv6:[::1]"
    assert peer_host("ipv6:[fe80::1%eth0]:40000") == "ipv6:[fe80::1%eth0]"
    assert peer_host("unix:/tmp/joulecast.sock") == "unix:/tmp/joulecast.sock"


def _gate(**kwargs) -> CallGate:
    return CallGate(max_calls=16, max_streams=4, idle_s=10.0, total_s=60.0, **kwargs)


def test_a_host_holds_all_slots_but_one_and_others_take_the_last() -> None:
    gate = _gate()
    assert gate.max_streams_per_host == 3
    with contextlib.ExitStack() as held:
        for _ in range(3):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.5"))
        with pytest.raises(ResourceLimit, match="this host already has 3 predict stream"):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.5"))
        # writes are counted apart, and so is another host
        with gate.stream("write", "ipv4:10.0.0.5"), gate.stream("predict", "ipv4:10.0.0.6"):
            pass
        held.enter_context(gate.stream("predict", "ipv4:10.0.0.6"))
        with pytest.raises(ResourceLimit, match="4 predict streams in progress"):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.7"))
    # every slot came back, refused attempts included
    with contextlib.ExitStack() as held:
        for _ in range(3):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.5"))
        held.enter_context(gate.stream("predict", "ipv4:10.0.0.6"))


def test_behind_a_proxy_the_share_can_be_every_slot() -> None:
    gate = _gate(max_streams_per_host=4)
    with contextlib.ExitStack() as held:
        for _ in range(4):
            held.enter_context(gate.stream("predict", "ipv4:10.0.0.1"))


def test_a_host_holds_three_quarters_of_the_calls_streams_included() -> None:
    gate = CallGate(max_calls=4, max_streams=2, idle_s=10.0, total_s=60.0, max_streams_per_host=2)
    assert gate.max_calls_per_host == 3
    with contextlib.ExitStack() as held:
        held.enter_context(gate.stream("predict", "ipv4:10.0.0.5"))  # a stream is a call too
        held.enter_context(gate.call("ipv4:10.0.0.5"))
        held.enter_context(gate.call("ipv4:10.0.0.5"))
        with pytest.raises(ResourceLimit, match="this host already has 3 call"):
            held.enter_context(gate.call("ipv4:10.0.0.5"))
        held.enter_context(gate.call("ipv4:10.0.0.6"))  # the last slot: another host's
        with pytest.raises(ResourceLimit, match="4 calls in progress"):
            held.enter_context(gate.call("ipv4:10.0.0.7"))
    with contextlib.ExitStack() as held:  # every slot came back
        for _ in range(3):
            held.enter_context(gate.call("ipv4:10.0.0.5"))
        held.enter_context(gate.call("ipv4:10.0.0.6"))


class _Fitted:
    """What a fit describes, as far as Retrain's answer reads it."""

    hardware, version, scores = "cpu-test", "v1", {}
    energy_source, energy_is_estimate = "rapl", False

    def selected_text(self) -> str:
        return "fake"


def test_a_real_server_refuses_a_hosts_call_past_its_share(
    start_server, tmp_path, token, family_graphs
) -> None:
    """A retrain holds this host's only call slot: its prediction is refused at once (no
    thread waits), and answered once the retrain has ended."""
    entered, release = threading.Event(), threading.Event()

    def held_fit(db, hardware, artifacts, **options):
        entered.set()
        assert release.wait(30)
        return _Fitted()

    MeasurementStore(tmp_path / "m.db").close()  # a retrain needs a store to read
    served = start_server(db_path=tmp_path / "m.db", fit=held_fit, max_calls_per_host=1)
    auth = bearer_metadata(token)
    retrain = served.stub.Retrain.future(pb.RetrainRequest(hardware="cpu-test"), metadata=auth)
    assert entered.wait(30)
    ask = pb.PredictEnergyRequest(
        onnx_model=family_graphs["mlp"], batch_size=8, samples=10, epochs=1
    )
    try:
        with pytest.raises(grpc.RpcError) as refused:
            served.stub.PredictEnergy(ask, timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "this host already has 1 call(s)" in (refused.value.details() or "")
    finally:
        release.set()
    assert retrain.result(timeout=30).version == "v1"
    assert served.stub.PredictEnergy(ask, timeout=30).train.energy_j > 0
