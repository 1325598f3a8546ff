"""The report draws transformer rows in a colour of their own in every figure that
colours by family, and gives them their own column in figures 1 and 2."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from estimator.report import figures, style
from estimator.report.claims import frames_rows
from estimator.report.data import load

OTHERS = ("mlp", "rnn", "cnn", "crnn", "rnn-frames", "other")


def _colours(fig: Figure) -> set[str]:
    return {
        to_hex(colour)
        for ax in fig.axes
        for artist in ax.collections
        if isinstance(artist, PathCollection)
        for colour in artist.get_facecolors()
    }


def test_transformer_rows_have_their_own_colour_in_every_figure(
    make_store: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: dict[str, Figure] = {}
    monkeypatch.setattr(style, "save", lambda fig, path: drawn.setdefault(Path(path).stem, fig))
    data, store = load(make_store(transformers=True))
    store.close()
    ref = data.reference
    cv = ref[["config_id", "family", "phase"]].assign(
        measured_j=ref["energy_j"], predicted_j=ref["energy_j"] * 1.1
    )
    figures.energy_grid(data, "test", tmp_path / "fig1.png")
    figures.energy_grid(data, "train", tmp_path / "fig2.png")
    figures.power_vs_flop_rate(data, tmp_path / "fig3.png")
    figures.utilisation(data, tmp_path / "fig4.png")
    figures.predicted_vs_measured(pd.DataFrame(cv), tmp_path / "fig6.png")
    figures.frames_rnn(data, frames_rows(data), tmp_path / "fig8.png")

    cyan = to_hex(style.colour("transformer"))
    assert cyan not in {to_hex(style.colour(f)) for f in OTHERS}
    assert set(drawn) == {"fig1", "fig2", "fig3", "fig4", "fig6", "fig8"}
    for name, fig in drawn.items():
        assert cyan in _colours(fig), name
    for name in ("fig1", "fig2"):
        axes = drawn[name].axes
        assert [ax.get_title() for ax in axes[:4]] == [
            "all families", "MLP / RNN", "CNN / CRNN", "Transformer"
        ]  # fmt: skip
        column = axes[3]
        assert {to_hex(c) for a in column.collections for c in a.get_facecolors()} == {cyan}
    assert "Transformer" in [t.get_text() for t in drawn["fig3"].axes[0].get_legend().get_texts()]
