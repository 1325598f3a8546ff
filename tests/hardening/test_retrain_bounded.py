"""A Retrain's fit runs in a child process that ends with its call: past the server's deadline,
when its client leaves, and when the server itself is killed. The version serving stays."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import grpc
import pytest
from hardening_harness import HARDWARE, TOKEN

from estimator.artifacts import current_version
from estimator.service import PredictorRegistry
from joulecast.errors import FailedPrecondition, ResourceLimit
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb
from server.cancel import CallCancel
from server.core import EstimatorCore, RetrainResult
from server.retrain_child import FitInChild, MiB

AUTH = bearer_metadata(TOKEN)
REPO = Path(__file__).resolve().parents[2]
SHIPPED_STORE = REPO / "artifacts" / "measurements" / "cpu-amd-epyc.db"


def _fit_processes(artifacts: Path) -> list[int]:
    """Pids of fitting processes working on ``artifacts`` (the path is in their command line,
    so that tests running beside this one are not counted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"server.retrain_child" in cmdline and str(artifacts).encode() in cmdline:
            found.append(int(entry.name))
    return found


def _gone(artifacts: Path, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while _fit_processes(artifacts) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _fit_processes(artifacts)


def _wait_for_fit(artifacts: Path, within_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + within_s
    while not (pids := _fit_processes(artifacts)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return pids


def _serve(start_server, artifacts: Path, db: Path, **settings):
    """A real server retraining from ``db`` into ``artifacts``."""
    return start_server(
        registry=PredictorRegistry(artifacts), artifacts_dir=artifacts, db_path=db, **settings
    )


def test_a_fit_past_the_deadline_is_killed_and_the_version_stays(
    start_server, fitted_copy, rpc_error
) -> None:
    artifacts, db = fitted_copy
    old = current_version(artifacts, HARDWARE)
    served = _serve(start_server, artifacts, db, retrain_deadline_s=0.5)
    code, details = rpc_error(
        served.stub.Retrain, pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=60
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "took longer than 0.5 s" in details
    assert _gone(artifacts, 1.0), "the fit outlived its deadline"
    assert current_version(artifacts, HARDWARE) == old


def test_a_client_that_leaves_stops_the_fit_and_the_next_retrain_runs(
    start_server, fitted_copy, rpc_error
) -> None:
    artifacts, db = fitted_copy
    old = current_version(artifacts, HARDWARE)
    served = _serve(start_server, artifacts, db)
    future = served.stub.Retrain.future(
        pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=120
    )
    assert _wait_for_fit(artifacts), "no fitting process started"
    future.cancel()
    assert _gone(artifacts, 1.5), "the fit went on after its client left"
    assert current_version(artifacts, HARDWARE) == old
    # asked again at once, while the stopped call may still be reloading: it waits for that,
    # then fits and publishes
    reply = served.stub.Retrain(pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=300)
    assert reply.version == current_version(artifacts, HARDWARE)
    assert reply.selected


def test_the_fit_ends_when_the_server_is_killed(tmp_path: Path) -> None:
    """A server killed with SIGKILL runs no callback: the child watches its parent instead.
    The shipped CPU store takes its fit 10-20 s on 2 cores, far longer than the child may
    outlive its parent."""
    db = tmp_path / "m.db"
    shutil.copy2(SHIPPED_STORE, db)
    artifacts = tmp_path / "artifacts"
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(REPO)!r})
            from pathlib import Path
            from server.retrain_child import FitInChild
            FitInChild()(Path({str(db)!r}), "cpu-amd-epyc", Path({str(artifacts)!r}))
            """
        )
    )
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        assert _wait_for_fit(artifacts, 60.0), "no fitting process started"
        time.sleep(1.0)  # into the fit's imports
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert _gone(artifacts, 3.0), "the fit outlived the server that started it"
        assert not (artifacts / "predictors" / "cpu-amd-epyc" / "CURRENT").exists()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_errors_of_the_fit_come_back_as_their_class(fitted_copy) -> None:
    from joulecast.errors import NotFound

    artifacts, db = fitted_copy
    try:
        FitInChild()(db, "cpu-nobody-measured", artifacts)
    except NotFound as exc:
        assert "cpu-nobody-measured" in str(exc)
    else:
        raise AssertionError("a hardware without rows was fitted")


def test_a_fit_past_its_memory_cap_is_refused(fitted_copy) -> None:
    """400 MiB is less than the address space the fit's libraries hold once imported: its
    first allocations fail in the child, never in the server."""
    artifacts, db = fitted_copy
    old = current_version(artifacts, HARDWARE)
    with pytest.raises(ResourceLimit, match="needed more than 400 MiB"):
        FitInChild(memory_bytes=400 * MiB)(db, HARDWARE, artifacts)
    assert current_version(artifacts, HARDWARE) == old


def _held_fit(entered: threading.Event, release: threading.Event):
    """``fit_and_publish`` that waits, once entered, until ``release`` is set: a fit nothing
    can stop (in process), as long as the test wants it to run."""
    from estimator.publish import fit_and_publish

    def fit(db: Path, hardware: str, artifacts: Path, **options: object):
        entered.set()
        assert release.wait(60), "the test never let the fit end"
        return fit_and_publish(db, hardware, artifacts, **options)

    return fit


def _core_with_a_held_fit(
    artifacts: Path, db: Path
) -> tuple[EstimatorCore, threading.Event, threading.Event]:
    """A server's core whose fits wait for ``release`` once ``entered``."""
    entered, release = threading.Event(), threading.Event()
    core = EstimatorCore(
        PredictorRegistry(artifacts),
        artifacts_dir=artifacts,
        db_path=db,
        fit=_held_fit(entered, release),
        profiler=None,
    )
    return core, entered, release


def _in_thread(call) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # the test reads it
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_retrain_asked_while_a_stopped_one_ends_waits_for_it(fitted_copy) -> None:
    """A client that gave up on its retrain and asks again finds the stopped one still ending
    (its process being killed, the served version reloaded): it waits for it, then fits."""
    artifacts, db = fitted_copy
    core, entered, release = _core_with_a_held_fit(artifacts, db)
    stopped = CallCancel()
    first, _ = _in_thread(lambda: core.retrain(HARDWARE, cancel=stopped))
    assert entered.wait(30)
    stopped.cancel()
    second, second_outcome = _in_thread(lambda: core.retrain(HARDWARE))
    second.join(0.5)
    assert second.is_alive(), f"answered while the stopped retrain held the slot: {second_outcome}"
    release.set()
    first.join(60)
    second.join(60)
    assert isinstance(second_outcome[0], RetrainResult), second_outcome
    assert second_outcome[0].version == current_version(artifacts, HARDWARE)


def test_a_retrain_asked_while_one_runs_is_refused_at_once(fitted_copy) -> None:
    artifacts, db = fitted_copy
    core, entered, release = _core_with_a_held_fit(artifacts, db)
    first, _ = _in_thread(lambda: core.retrain(HARDWARE, cancel=CallCancel()))
    assert entered.wait(30)
    began = time.monotonic()
    with pytest.raises(FailedPrecondition, match="already running"):
        core.retrain(HARDWARE)
    assert time.monotonic() - began < 1.0
    release.set()
    first.join(60)
