"""``joulecast serve`` in a child process: start it on a free port and read the address it prints.

The benchmarks and the tests that need a real server in its own process (its own CPU use, a
SIGKILL, its startup time) start it here, so "started" means the same thing everywhere: the
server printed ``listening on HOST:PORT`` on its standard output.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

LISTENING = "listening on "
"""What ``joulecast serve`` prints (then its address) once it accepts calls."""


def start_serve(
    *serve_args: str,
    verbose: bool = False,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stderr: IO[str] | None = None,
    wait_s: float = 90.0,
) -> tuple[subprocess.Popen[str], str | None]:
    """Start ``python -m joulecast.cli [-v] serve --port 0 *serve_args``.

    Returns the process and the address it listens on, or None for the address when the
    process exited or did not say it was listening within ``wait_s`` seconds (the caller
    decides what a failed start means: it owns the process either way).
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "joulecast.cli",
            *(["-v"] if verbose else []),
            "serve",
            "--port",
            "0",
            *serve_args,
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=cwd,
        env=None if env is None else dict(env),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + wait_s
    line = proc.stdout.readline()
    while not line.startswith(LISTENING) and time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        line = proc.stdout.readline()
    return proc, line.split()[-1] if line.startswith(LISTENING) else None
