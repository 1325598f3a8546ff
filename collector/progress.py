"""Progress bars for long sweeps (rich): one for the sweep, one for the current epoch."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as _Bars

from collector.runner import Progress


class RichProgress(Progress):
    def __init__(self) -> None:
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
