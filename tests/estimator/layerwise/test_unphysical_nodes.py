"""A layer-sum answer no CPU could give is never served as one: the shipped
xeon-gold-5120-2c MatMul model, fitted on vectors, priced a product over a sequence at
~1e-70 J (a rate of 1e79 FLOP/s); such a node is priced per byte, said so, and its answer
grows with its work."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from joulecast.api.local import InProcessClient
from joulecast.weightless import export_weightless

REPO = Path(__file__).parents[3]
HARDWARE = "xeon-gold-5120-2c"


def _linear_over(tokens: int) -> bytes:
    """A bias-free Linear(64, 64) over ``tokens`` positions (a sequence: a 3-D MatMul)."""
    return export_weightless(nn.Linear(64, 64, bias=False).eval(), torch.zeros(1, tokens, 64))


def test_a_product_over_a_sequence_is_priced_by_its_work_and_flagged() -> None:
    client = InProcessClient(REPO / "artifacts")
    short, long = (
        client.predict(_linear_over(n), hardware=HARDWARE, batch_size=8, samples=256)
        for n in (10, 1000)
    )
    for answer in (short, long):
        assert answer.test is not None and answer.test.predictor == "layer-sum"
        flagged = [w for w in answer.warnings if "outside what any CPU can do" in w]
        assert flagged and "MatMul x1" in flagged[0] and "priced per byte" in flagged[0]
        seconds = answer.test.duration_s / 256  # per sample
        assert seconds * 2e13 > answer.flops_forward  # no CPU runs faster
        # bounded as an op never measured is: at least the widest op's band, widened
        assert answer.test.energy_high_j / answer.test.energy_low_j > 2
    # 100 times the work costs more: the model alone answered both the same
    assert long.test.energy_j > 10 * short.test.energy_j
