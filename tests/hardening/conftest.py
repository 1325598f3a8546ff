"""Fixtures of the hardening tests: the server tests' fixtures (loaded from
``tests/server/conftest.py``, not copied), a predictor really fitted on measured rows, a
recorder of every file the process opens, and ``joulecast serve`` as a subprocess that a test
may kill -9."""

from __future__ import annotations

import builtins
import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import onnx.external_data_helper
import pytest
from hardening_harness import HARDWARE, ROOT, TOKEN, OpenRecorder, ServerProcess, server_fixtures

from joulecast.store import MeasurementStore
from server.spawn import start_serve

# Fixtures reused as they are (pytest finds them by name in this module).
start_server = server_fixtures.start_server
sweep_graphs = server_fixtures.sweep_graphs
make_rows = server_fixtures.make_rows
family_graphs = server_fixtures.family_graphs
rpc_error = server_fixtures.rpc_error


@pytest.fixture(scope="session")
def fitted(tmp_path_factory: pytest.TempPathFactory, make_rows) -> tuple[Path, Path]:
    """(artifacts, store): a store holding the measured sweep of ``cpu-test`` and a predictor
    fitted on it and published with ``fit_and_publish``. Copy before changing either."""
    from estimator.publish import fit_and_publish

    base = tmp_path_factory.mktemp("fitted")
    db, artifacts = base / "m.db", base / "artifacts"
    rows = make_rows(HARDWARE)
    with MeasurementStore(db) as store:
        for _, graph in rows:
            store.put_graph(graph)
        store.put_rows([(row, ()) for row, _ in rows])
    fit_and_publish(db, HARDWARE, artifacts)
    return artifacts, db


@pytest.fixture
def fitted_copy(fitted, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of :func:`fitted` that a test may change."""
    artifacts, db = fitted
    shutil.copytree(artifacts, tmp_path / "artifacts")
    shutil.copy2(db, tmp_path / "m.db")
    return tmp_path / "artifacts", tmp_path / "m.db"


@pytest.fixture(scope="module")
def open_recorder() -> Iterator[OpenRecorder]:
    recorder = OpenRecorder()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "open", recorder.wrap(builtins.open))
        mp.setattr(io, "open", recorder.wrap(io.open))
        mp.setattr(os, "open", recorder.wrap(os.open))
        for name in ("load_external_data_for_model", "load_external_data_for_tensor"):
            mp.setattr(onnx.external_data_helper, name, recorder.external)
        yield recorder


# -- joulecast serve as a subprocess ------------------------------------------------------------


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``spawn_server(artifacts, db, *extra_args, env=...)``: ``joulecast serve --port 0`` in a
    subprocess with the test token in a file; waits for its "listening on" line."""
    started: list[ServerProcess] = []
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")

    def spawn(
        artifacts: Path, db: Path, *extra: str, env: dict | None = None, verbose: bool = False
    ) -> ServerProcess:
        n = len(started)
        stderr_path = tmp_path / f"server-{n}.stderr"
        base_env = {k: v for k, v in os.environ.items() if k != "JOULECAST_TOKEN"}
        proc, address = start_serve(
            "--artifacts",
            str(artifacts),
            "--db",
            str(db),
            "--token-file",
            str(token_file),
            *extra,
            verbose=verbose,
            stderr=stderr_path.open("w"),
            cwd=ROOT,
            env={**base_env, **(env or {})},
        )
        server = ServerProcess(proc, address or "", stderr_path)
        started.append(server)
        assert address is not None, server.stderr()
        return server

    yield spawn
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait(10)
