"""Which of the paper's families a graph belongs to, with the reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def classify(
    kinds: Sequence[str],
    parents: Sequence[Sequence[int]],
    attention: str | None,
    control_flow: str | None,
) -> tuple[str, str]:
    """``(family, reason)`` from the parametric layers of a graph.

    ``kinds[i]`` is the kind of node ``i`` (``conv``, ``dense``, ``recurrent`` or anything
    else); ``parents[i]`` the indices of the nodes that feed it (topological order).
    ``attention`` / ``control_flow`` name the first such node, if any.
    """
    if control_flow is not None:
        return "other", f"control flow: {control_flow}"
    conv = [i for i, k in enumerate(kinds) if k == "conv"]
    if attention is not None:
        # Attention defines the family whatever surrounds it: a conformer (attention plus a
        # convolution module) or a patch transformer (convolutional patch embedding) is a
        # transformer, because its cost grows with the sequence length squared, not linearly.
        front = f", {len(conv)} convolution(s)" if conv else ""
        return "transformer", f"attention: {attention} multiplies two activations{front}"
    rec = [i for i, k in enumerate(kinds) if k == "recurrent"]
    dense = [i for i, k in enumerate(kinds) if k == "dense"]
    if conv and rec:
        after_conv = _reachable_from(conv, parents)
        if all(i in after_conv for i in rec):
            return "crnn", f"{len(conv)} convolution(s) feed {len(rec)} recurrent layer(s)"
        return "other", "a recurrent layer is not fed by the convolutions"
    if conv:
        return "cnn", f"{len(conv)} convolution(s), {len(dense)} dense layer(s), no recurrence"
    if rec:
        return "rnn", f"{len(rec)} recurrent layer(s), {len(dense)} dense layer(s), no convolution"
    if dense:
        return "mlp", f"{len(dense)} dense layer(s) only"
    return "other", "no convolution, dense or recurrent layer"


def _reachable_from(sources: Sequence[int], parents: Sequence[Sequence[int]]) -> set[int]:
    """Nodes downstream of any of ``sources`` (sources excluded unless downstream of another)."""
    downstream: set[int] = set()
    src = set(sources)
    for i, ps in enumerate(parents):
        if any(p in src or p in downstream for p in ps):
            downstream.add(i)
    return downstream


def node_parents(
    outputs: Sequence[Sequence[str]], inputs: Sequence[Sequence[str]]
) -> list[list[int]]:
    producer: Mapping[str, int] = {n: i for i, outs in enumerate(outputs) for n in outs if n}
    return [sorted({producer[n] for n in ins if n in producer}) for ins in inputs]
