"""Progress for long sweeps: rich bars (one for the sweep, one for the current epoch) when rich
is installed, else one plain line per row (the GPU device machine has no rich)."""

from __future__ import annotations

import importlib.util
import sys
import time

from collector.runner import Progress


def make_progress() -> Progress:
    """Rich bars when rich can be imported, else :class:`LineProgress`."""
    if importlib.util.find_spec("rich") is not None:
        return RichProgress()
    return LineProgress()


class LineProgress(Progress):
    """One line on stderr per finished row: ``[done/total] label ok (elapsed s)``."""

    def __init__(self) -> None:
        self._total = 0
        self._done = 0
        self._start = time.monotonic()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def sweep_started(self, total_rows: int) -> None:
        self._total = total_rows

    def row_done(self, label: str, ok: bool) -> None:
        self._done += 1
        state = "ok" if ok else "FAILED"
        elapsed_s = time.monotonic() - self._start
        print(f"[{self._done}/{self._total}] {label} {state} ({elapsed_s:.0f} s)", file=sys.stderr)


class RichProgress(Progress):
    def __init__(self) -> None:
        # rich is optional (the GPU device machine has none): imported only when it is found
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as _Bars

        self._bars = _Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            transient=False,
        )
        self._sweep = self._bars.add_task("sweep", total=0)
        self._epoch: int | None = None

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()

    def sweep_started(self, total_rows: int) -> None:
        self._bars.update(self._sweep, total=total_rows)

    def phase_started(self, label: str, batches: int) -> None:
        if self._epoch is not None:
            self._bars.remove_task(self._epoch)
        self._epoch = self._bars.add_task(label, total=batches)

    def batch_done(self) -> None:
        if self._epoch is not None:
            self._bars.advance(self._epoch)

    def row_done(self, label: str, ok: bool) -> None:
        self._bars.advance(self._sweep)
        if not ok:
            self._bars.console.print(f"[red]failed[/red] {label}")
