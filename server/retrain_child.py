"""A retrain's fit in a child process: bounded in time and memory, stopped when its caller leaves.

Why a process: a fit reads every row of the store, uploaded rows included, and runs
cross-validation and gradient boosting over them. In a server thread nothing bounds it (a store
grown by AddMeasurements can take minutes and gigabytes), nothing stops it when its client
gives up, and a crash takes the server with it. Here the fit runs in its own process under an
address-space cap (``RLIMIT_AS``, set once its imports are done), the parent kills it past
:attr:`FitInChild.deadline_s` or when the call's :class:`server.cancel.CallCancel` is set, and
the child exits by itself when its parent dies (it watches its parent's pid). A fit killed at
any moment leaves the artifacts servable: a publish writes a new version aside and moves
``CURRENT`` in one rename (:func:`estimator.artifacts.publish`), and what a killed publish
leaves behind is removed at the next start (:func:`estimator.artifacts.remove_stale_temporaries`).

The child writes its answer, JSON (never pickle), to a file the parent names; its standard
output goes to the server's standard error (file descriptor 2), so that a stray print of the fit
can never be read as the server's ``listening on`` line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joulecast.errors import Cancelled, InternalError, JoulecastError, ResourceLimit
from server.cancel import CallCancel
from server.profile_worker import error_classes
from server.settings import MiB

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from server.retrain_child import child_main; sys.exit(child_main(sys.argv[1:]))"
)
_KINDS: dict[str, type[JoulecastError]] = {cls.__name__: cls for cls in error_classes()}
"""The errors an answer names by class, those of the profiling workers' answers; the parent
raises the same class again (so the gRPC edge maps it to the same code). Any other error comes
back as an internal one."""
POLL_S = 0.1
PARENT_WATCH_S = 1.0


class FitStopped(ResourceLimit):
    """The fit ran past its deadline and was killed."""


@dataclass(frozen=True)
class FitOutcome:
    """What a fit in the child published: the fields of
    :class:`estimator.description.PredictorDescription` that a retrain answers with."""

    hardware: str
    version: str
    selected: str
    scores: Mapping[str, Any] = field(default_factory=dict)
    energy_source: str = ""
    energy_is_estimate: bool = False

    def selected_text(self) -> str:
        return self.selected


@dataclass(frozen=True)
class FitInChild:
    """Runs :func:`estimator.publish.fit_and_publish` in a child process.

    ``deadline_s``: longest a fit may take (the call's own deadline, when sooner, wins);
    ``memory_bytes``: the child's address-space cap (0: none)."""

    deadline_s: float = 1800.0
    memory_bytes: int = 8192 * MiB

    def __call__(
        self,
        db: Path,
        hardware: str,
        artifacts_dir: Path,
        cancel: CallCancel | None = None,
        allow_idle_meter: bool = False,
    ) -> FitOutcome:
        with tempfile.TemporaryDirectory(prefix="joulecast-retrain-") as tmp:
            answer = Path(tmp) / "answer.json"
            request = {
                "db": str(db),
                "hardware": hardware,
                "artifacts": str(artifacts_dir),
                "answer": str(answer),
                "allow_idle_meter": bool(allow_idle_meter),
                "memory_bytes": int(self.memory_bytes),
                "log_level": logging.getLogger().getEffectiveLevel(),
            }
            began = time.monotonic()
            # glibc keeps an arena of address space per thread: on a many-core machine
            # xgboost's threads alone would reach the cap without using the memory
            env = dict(os.environ, MALLOC_ARENA_MAX="2")
            proc = subprocess.Popen(
                [sys.executable, "-c", _BOOTSTRAP, str(ROOT), json.dumps(request)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=2,  # this process's standard error, whatever object sys.stderr is now
                close_fds=True,
                start_new_session=True,  # its own group: a kill reaches whatever it started
            )
            logger.info("retrain of %s: fitting in process %d", hardware, proc.pid)
            stopped = self._wait(proc, began, cancel)
            if stopped is not None:
                raise stopped
            return _read_answer(answer, proc.returncode, self.memory_bytes)

    def _wait(
        self, proc: subprocess.Popen[bytes], began: float, cancel: CallCancel | None
    ) -> JoulecastError | None:
        """Wait for the child; kill it and return the error to raise when the caller left or
        the deadline passed (None when it ended by itself)."""
        deadline = began + self.deadline_s
        while True:
            try:
                proc.wait(timeout=POLL_S)
                return None
            except subprocess.TimeoutExpired:
                pass
            if cancel is not None and cancel.is_set():
                _kill(proc)
                return Cancelled("the retrain's caller went away: its fit was stopped")
            if time.monotonic() >= deadline:
                _kill(proc)
                return FitStopped(
                    f"the retrain's fit took longer than {self.deadline_s:g} s and was stopped"
                )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _read_answer(path: Path, returncode: int, memory_bytes: int) -> FitOutcome:
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        answer = None
    if not isinstance(answer, dict):
        raise InternalError(
            f"the retrain's fitting process ended without an answer (exit {returncode})"
        )
    if "error" in answer:
        kind = _KINDS.get(str(answer["error"]))
        message = str(answer.get("message", ""))
        if answer["error"] == "MemoryError":
            raise ResourceLimit(
                f"the retrain's fit needed more than {memory_bytes >> 20} MiB and was stopped"
            )
        raise (kind or InternalError)(message or "the retrain's fit failed")
    return FitOutcome(
        hardware=str(answer["hardware"]),
        version=str(answer["version"]),
        selected=str(answer["selected"]),
        scores=answer.get("scores") or {},
        energy_source=str(answer.get("energy_source", "")),
        energy_is_estimate=bool(answer.get("energy_is_estimate", False)),
    )


# -- the child ---------------------------------------------------------------------------------


def child_main(argv: list[str]) -> int:
    """Fit and publish one hardware; the answer (or the error's class and message) goes to the
    file the request names."""
    request = json.loads(argv[0])
    logging.basicConfig(
        level=int(request.get("log_level", logging.WARNING)),
        format="%(levelname)s %(name)s: %(message)s",
    )
    _watch_parent(os.getppid())
    answer_path = Path(request["answer"])
    try:
        from estimator.publish import fit_and_publish

        import_fit_dependencies()
        memory_bytes = int(request["memory_bytes"])
        if memory_bytes > 0:
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        described = fit_and_publish(
            Path(request["db"]),
            request["hardware"],
            Path(request["artifacts"]),
            allow_idle_meter=bool(request.get("allow_idle_meter")),
        )
        answer: dict[str, Any] = {
            "hardware": described.hardware,
            "version": described.version,
            "selected": described.selected_text(),
            "scores": described.scores,
            "energy_source": described.energy_source,
            "energy_is_estimate": described.energy_is_estimate,
        }
    except MemoryError:
        answer = {"error": "MemoryError", "message": "out of memory"}
    except JoulecastError as exc:
        kind = next((name for name, cls in _KINDS.items() if isinstance(exc, cls)), "Internal")
        answer = {"error": kind, "message": str(exc)}
    except Exception as exc:  # a bug in the fit: logged here, answered as internal there
        logging.getLogger(__name__).exception("retrain fit failed")
        answer = {"error": "Internal", "message": f"{type(exc).__name__}: {exc}"}
    answer_path.write_text(json.dumps(answer, default=str), encoding="utf-8")
    return 0


def import_fit_dependencies() -> None:
    """Import what a fit loads lazily before the address space is capped: a library's first
    import maps its shared objects and thread pools, which must not count as the fit's memory."""
    import pandas  # noqa: F401
    import scipy.optimize  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import xgboost  # noqa: F401


def _watch_parent(parent: int) -> None:
    """Exit when the server that started this fit is gone (killed with SIGKILL, its pipes
    and callbacks went with it): a fit nobody waits for must not run on, nor publish."""

    def watch() -> None:
        while True:
            time.sleep(PARENT_WATCH_S)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
