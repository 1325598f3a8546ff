"""What a predictor's training rows covered, and how far a request lies outside it.

A predictor learned from rows of some batch sizes and input shapes; a request outside them is an
extrapolation (one batch size only, e.g. EC-NAS-Bench's 256, says nothing about batch 64). The
*domain* is stored with the predictor; every dimension a request leaves adds a warning and widens
its interval by :data:`WIDEN` (families have their own mechanism: an unseen family is answered
by the family-free fallback with the leave-one-family-out interval).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

WIDEN = 1.5
"""Interval half-width (log space) multiplier per dimension a request lies outside."""
MAX_LISTED_SHAPES = 8
"""Up to this many distinct input shapes are listed; more make a range of elements only."""


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """``3x32x32`` for one sample's input shape; ``""`` when unknown."""
    return "x".join(str(int(d)) for d in shape)


def _elements(text: str) -> int | None:
    if not text:
        return None
    n = 1
    for d in text.split("x"):
        n *= int(d)
    return n


def describe(frame: pd.DataFrame) -> dict[str, object]:
    """The domain of a feature frame: batch-size range, input shapes (or their size range)."""
    batches = frame["batch_size"].astype(int)
    domain: dict[str, object] = {"batch_size": [int(batches.min()), int(batches.max())]}
    if "input_shape" in frame:
        shapes = sorted({str(s) for s in frame["input_shape"] if isinstance(s, str) and s})
        sizes = [n for n in (_elements(s) for s in shapes) if n is not None]
        if shapes and len(shapes) == len(set(frame["input_shape"])):
            domain["input_elements"] = [min(sizes), max(sizes)]
            if len(shapes) <= MAX_LISTED_SHAPES:
                domain["input_shapes"] = shapes
    return domain


def outside(
    domain: Mapping[str, object], features: Mapping[str, object], *, batch_size: bool = True
) -> list[str]:
    """One sentence per dimension of ``features`` (a run_features mapping) outside ``domain``.

    ``batch_size=False`` leaves the batch size to a caller that checks it with other ranges.
    """
    found: list[str] = []
    batch = int(features["batch_size"])  # type: ignore[arg-type]
    low, high = domain.get("batch_size", (batch, batch))  # type: ignore[misc]
    if batch_size and not low <= batch <= high:
        seen = f"{low}" if low == high else f"{low}-{high}"
        found.append(f"batch size {batch} is outside the measured batch sizes ({seen})")
    shape = str(features.get("input_shape", ""))
    shapes = domain.get("input_shapes")
    size = domain.get("input_elements")
    if shape and isinstance(shapes, list) and shape not in shapes:
        found.append(f"input {shape} is not a measured input shape ({', '.join(shapes)})")
    elif shape and isinstance(size, list) and not size[0] <= (_elements(shape) or 0) <= size[1]:
        found.append(
            f"input {shape} has {_elements(shape)} elements, outside the measured "
            f"{size[0]}-{size[1]}"
        )
    return found
