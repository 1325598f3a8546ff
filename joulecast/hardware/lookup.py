"""Find a catalogued GPU by its id, its marketing name or any name NVML reports for it."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from joulecast.errors import InvalidArgument
from joulecast.hardware.catalog import load_catalog
from joulecast.hardware.names import model_words, name_keys, words
from joulecast.hardware.spec import GpuSpec

_SHOWN_CANDIDATES = 8


class AmbiguousGpuName(InvalidArgument):
    """A name that matches no catalogued GPU exactly but is part of one or more GPUs' names.

    ``candidates`` holds their ids. Short names are refused rather than guessed: "A100" is four
    GPUs, and "GTX 1080" is not the catalogued GTX 1080 Ti.
    """

    def __init__(self, name: str, candidates: Sequence[GpuSpec]) -> None:
        self.name = name
        self.candidates = tuple(spec.id for spec in candidates)
        shown = ", ".join(f"{s.id} ({s.name})" for s in candidates[:_SHOWN_CANDIDATES])
        more = len(candidates) - _SHOWN_CANDIDATES
        if more > 0:
            shown += f" and {more} more"
        super().__init__(
            f"GPU name {name!r} is not a catalogued name; it is part of the names of: {shown}. "
            "Give a catalogued id (`joulecast hardware` lists them)"
        )


def find_gpu(name_or_id: str, *, catalog: Sequence[GpuSpec] | None = None) -> GpuSpec | None:
    """The catalogued GPU that ``name_or_id`` names, or ``None`` when no GPU's name contains it.

    Accepts an id ("tesla-t4"), the marketing name or any NVML name ("Tesla T4",
    "NVIDIA H100 80GB HBM3"), ignoring case, spaces, punctuation and leading brand words
    ("NVIDIA Tesla T4", "t4"). Raises :class:`AmbiguousGpuName` for a name that matches no
    entry exactly but whose words all appear in some entries' names ("a100", "v100 pcie").
    ``catalog`` defaults to the shipped one.
    """
    specs = load_catalog() if catalog is None else tuple(catalog)
    index = _default_index() if catalog is None else _index(specs)
    found = {spec.id: spec for key in name_keys(name_or_id) for spec in index.get(key, ())}
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        raise AmbiguousGpuName(name_or_id, list(found.values()))
    query = set(model_words(name_or_id))
    if not query:
        return None
    candidates = [spec for spec in specs if any(query <= set(words(n)) for n in _names(spec))]
    if candidates:
        raise AmbiguousGpuName(name_or_id, candidates)
    return None


def find_one_gpu(name_or_id: str) -> GpuSpec | None:
    """:func:`find_gpu` of the shipped catalog, None where it finds no GPU or several: for a
    name taken as it comes (a hardware id, a device's name) that needs no reason why not."""
    try:
        return find_gpu(name_or_id)
    except AmbiguousGpuName:
        return None


def _names(spec: GpuSpec) -> tuple[str, ...]:
    return (spec.id, spec.name, *spec.nvml_names)


def _index(specs: Sequence[GpuSpec]) -> dict[str, tuple[GpuSpec, ...]]:
    index: dict[str, list[GpuSpec]] = {}
    for spec in specs:
        for key in {k for name in _names(spec) for k in name_keys(name)}:
            index.setdefault(key, []).append(spec)
    return {key: tuple(owners) for key, owners in index.items()}


@functools.cache
def _default_index() -> dict[str, tuple[GpuSpec, ...]]:
    return _index(load_catalog())
