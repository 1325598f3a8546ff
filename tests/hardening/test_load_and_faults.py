"""Concurrent load and kill -9, on loopback, bounded in time and count (marked ``slow``).

A killed *collector* resuming with no duplicate and no lost row is tested in
``tests/collector/test_sweep.py::test_a_killed_sweep_resumes_without_duplicates_or_losses``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hardening_harness import HARDWARE, SERVING, TOKEN, health_status

from client import convert as client_convert
from estimator.artifacts import current_version, load_current, predictors_root
from estimator.service import PredictorRegistry
from joulecast.store import MeasurementStore
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb
from rpc.generated import estimator_pb2_grpc as pb_grpc

pytestmark = pytest.mark.slow

AUTH = bearer_metadata(TOKEN)
PREDICTORS = 8
WRITERS = 4
BATCHES = 20
ROWS_PER_BATCH = 6
LOAD_BOUND_S = 40.0


class Aborted(Exception):
    """Raised by a request stream to abandon a batch half-way."""


def _batch(templates, writer: str, n: int, size: int = ROWS_PER_BATCH) -> list:
    """``size`` new rows (unique run keys) with their graphs, from measured ``templates``."""
    picked = [templates[(n * size + i) % len(templates)] for i in range(size)]
    return [
        (dataclasses.replace(row, run_key=f"{writer}/{n}/{i}"), graph)
        for i, (row, graph) in enumerate(picked)
    ]


def _stored_keys(db: Path) -> set[str]:
    with MeasurementStore(db) as store:
        return {r.run_key for r in store.rows()}


def test_predict_under_writes_and_retrains(start_server, fitted_copy, make_rows, family_graphs):
    """8 predicting clients, 4 writers (every fourth batch abandoned half-way) and retrains
    in a loop: predict never fails, every acknowledged row is stored, nothing else is."""
    artifacts, db = fitted_copy
    served = start_server(
        registry=PredictorRegistry(artifacts),
        artifacts_dir=artifacts,
        db_path=db,
        max_workers=16,
        max_streams_per_host=4,  # four writers, all on 127.0.0.1
        max_calls_per_host=14,  # and every other client: all the calls 16 threads allow
    )
    templates = make_rows(HARDWARE, tag="load")
    before = _stored_keys(db)
    stop = threading.Event()
    lock = threading.Lock()
    predicted: list[str] = []
    failures: list[str] = []
    acked: set[str] = set()
    abandoned: set[str] = set()
    retrains: list[str] = []
    graphs = list(family_graphs.values())

    def predictor(k: int) -> None:
        with grpc.insecure_channel(served.address) as channel:
            stub = pb_grpc.EnergyEstimatorStub(channel)
            n = 0
            while not stop.is_set():
                graph = graphs[(k + n) % len(graphs)]
                n += 1
                request = pb.PredictEnergyRequest(
                    onnx_model=graph, batch_size=8, samples=100 + n, epochs=1
                )
                try:
                    reply = stub.PredictEnergy(request, timeout=20)
                    with lock:
                        predicted.append(reply.predictor_version)
                except grpc.RpcError as exc:
                    with lock:
                        failures.append(f"predict: {exc.code()} {exc.details()}")

    def writer(w: int) -> None:
        with grpc.insecure_channel(served.address) as channel:
            stub = pb_grpc.EnergyEstimatorStub(channel)
            for n in range(BATCHES):
                if stop.is_set():
                    return
                rows = _batch(templates, f"w{w}", n)
                messages = [client_convert.message_from_row(r, g) for r, g in rows]
                if n % 4 == 3:  # abandon this batch after half its rows

                    def half(messages=messages) -> Iterator[pb.MeasurementRow]:
                        yield from messages[: len(messages) // 2]
                        time.sleep(0.05)
                        raise Aborted

                    with pytest.raises(grpc.RpcError):
                        stub.AddMeasurements(half(), metadata=AUTH, timeout=20)
                    with lock:
                        abandoned.update(r.run_key for r, _ in rows)
                    continue
                try:
                    reply = stub.AddMeasurements(iter(messages), metadata=AUTH, timeout=20)
                except grpc.RpcError as exc:
                    with lock:
                        failures.append(f"add: {exc.code()} {exc.details()}")
                    continue
                with lock:
                    acked.update(r.run_key for r in reply.results if r.accepted)
                    failures.extend(
                        f"row {r.run_key}: {r.reason}" for r in reply.results if not r.accepted
                    )

    def retrainer() -> None:
        with grpc.insecure_channel(served.address) as channel:
            stub = pb_grpc.EnergyEstimatorStub(channel)
            while not stop.is_set():
                try:
                    reply = stub.Retrain(
                        pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=60
                    )
                    with lock:
                        retrains.append(reply.version)
                except grpc.RpcError as exc:
                    with lock:
                        failures.append(f"retrain: {exc.code()} {exc.details()}")

    started = time.monotonic()
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    others = [threading.Thread(target=predictor, args=(k,)) for k in range(PREDICTORS)]
    others.append(threading.Thread(target=retrainer))
    for t in (*writers, *others):
        t.start()
    for t in writers:
        t.join(max(0.0, LOAD_BOUND_S - (time.monotonic() - started)))
    time.sleep(max(0.0, min(3.0, LOAD_BOUND_S - (time.monotonic() - started))))
    stop.set()
    for t in (*writers, *others):
        t.join(90)
    duration = time.monotonic() - started

    assert not failures, failures[:10]
    assert not any(t.is_alive() for t in (*writers, *others))
    assert len(predicted) >= 8 * PREDICTORS and retrains
    stored = _stored_keys(db) - before
    assert acked == stored, (sorted(acked - stored)[:5], sorted(stored - acked)[:5])
    assert not abandoned & stored
    assert len(acked) == WRITERS * (BATCHES - BATCHES // 4) * ROWS_PER_BATCH
    published = {v.name for v in (predictors_root(artifacts) / HARDWARE).iterdir()}
    assert set(predicted) <= published
    assert health_status(served.channel) == SERVING
    print(
        f"load: {len(predicted)} predictions, {len(acked)} rows acknowledged and stored, "
        f"{len(abandoned)} rows abandoned and absent, {len(retrains)} retrains, "
        f"{duration:.1f} s"
    )


def test_kill9_during_writes_loses_no_acknowledged_row(spawn_server, fitted_copy, make_rows):
    artifacts, db = fitted_copy
    before = _stored_keys(db)
    server = spawn_server(artifacts, db)
    templates = make_rows(HARDWARE, tag="kill")
    lock = threading.Lock()
    acked: set[str] = set()
    sent: dict[str, list[str]] = {}
    errors: list[grpc.StatusCode] = []

    def writer(w: int) -> None:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.EnergyEstimatorStub(channel)
            for n in range(400):
                rows = _batch(templates, f"k{w}", n, size=20)
                with lock:
                    sent[f"k{w}/{n}"] = [r.run_key for r, _ in rows]
                messages = [client_convert.message_from_row(r, g) for r, g in rows]
                try:
                    reply = stub.AddMeasurements(iter(messages), metadata=AUTH, timeout=20)
                except grpc.RpcError as exc:
                    with lock:
                        errors.append(exc.code())
                    return
                with lock:
                    acked.update(r.run_key for r in reply.results if r.accepted)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(acked) >= 200:
                break
        time.sleep(0.05)
    server.kill9()
    for t in threads:
        t.join(30)
    assert len(acked) >= 200 and errors, "the server was not killed in the middle of writes"

    stored = _stored_keys(db) - before
    assert acked <= stored, sorted(acked - stored)[:5]
    for batch, keys in sent.items():  # one transaction per call: all of a batch or none
        present = set(keys) & stored
        assert not present or present == set(keys), batch

    again = spawn_server(artifacts, db)
    with grpc.insecure_channel(again.address) as channel:
        assert health_status(channel) == SERVING
        stub = pb_grpc.EnergyEstimatorStub(channel)
        rows = _batch(templates, "after", 0)
        reply = stub.AddMeasurements(
            iter([client_convert.message_from_row(r, g) for r, g in rows]),
            metadata=AUTH,
            timeout=30,
        )
        assert reply.accepted == len(rows)
    assert acked <= _stored_keys(db)
    print(f"kill -9 during writes: {len(acked)} rows acknowledged, {len(stored)} stored, 0 lost")


def test_kill9_during_retrain_keeps_the_previous_version(
    spawn_server, fitted_copy, make_rows, family_graphs
):
    """Kill -9 a server while it retrains: a fixed delay into the fit, or at once when the new
    version's temporary folder appears (mid-publish). A retrain that was killed leaves the
    previous version CURRENT, and it loads; the next server serves it and can retrain."""
    artifacts, db = fitted_copy
    with MeasurementStore(db) as store:  # more rows, so that a refit yields a new version
        templates = make_rows(HARDWARE, scale=3.0, tag="r")
        rows = [r for n in range(20) for r in _batch(templates, "r", n)]
        store.put_rows([(row, ()) for row, _ in rows])
    hw_dir = predictors_root(artifacts) / HARDWARE
    killed = kept = 0
    for attempt, delay_s in enumerate((0.1, 0.25, 0.4, 0.6)):
        previous = current_version(artifacts, HARDWARE)
        server = spawn_server(artifacts, db)
        outcome: list[object] = []

        def retrain(address: str = server.address, outcome: list = outcome) -> None:
            with grpc.insecure_channel(address) as channel:
                try:
                    outcome.append(
                        pb_grpc.EnergyEstimatorStub(channel).Retrain(
                            pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=120
                        )
                    )
                except grpc.RpcError as exc:
                    outcome.append(exc.code())

        thread = threading.Thread(target=retrain)
        thread.start()
        until = time.monotonic() + delay_s
        while time.monotonic() < until and not any(hw_dir.glob(".tmp-*")) and not outcome:
            time.sleep(0.001)
        server.kill9()
        thread.join(30)
        if outcome == [grpc.StatusCode.UNAVAILABLE]:  # killed before it answered
            killed += 1
            current = current_version(artifacts, HARDWARE)
            if current != previous:  # published, then killed before the reply: also whole
                assert load_current(artifacts, HARDWARE).version == current
            else:
                kept += 1
                assert load_current(artifacts, HARDWARE).version == previous
        else:
            (reply,) = outcome
            assert current_version(artifacts, HARDWARE) == reply.version, attempt
        # Each attempt refits the same rows: make the next one differ.
        with MeasurementStore(db) as store:
            extra = [r for r, _ in _batch(templates, f"r{attempt}", 0)]
            store.put_rows([(row, ()) for row in extra])
    assert kept, "no retrain was killed before it published"

    previous = current_version(artifacts, HARDWARE)
    again = spawn_server(artifacts, db)
    with grpc.insecure_channel(again.address) as channel:
        stub = pb_grpc.EnergyEstimatorStub(channel)
        listed = stub.ListPredictors(pb.ListPredictorsRequest(), timeout=30)
        assert [(p.hardware, p.version) for p in listed.predictors] == [(HARDWARE, previous)]
        reply = stub.PredictEnergy(
            pb.PredictEnergyRequest(
                onnx_model=family_graphs["cnn"], batch_size=8, samples=100, epochs=1
            ),
            timeout=30,
        )
        assert reply.predictor_version == previous
        newer = stub.Retrain(pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=120)
        assert newer.version != previous
    print(
        f"kill -9 during retrain: {killed} of 4 retrains killed, {kept} before publishing "
        "(previous version still CURRENT and loads)"
    )
