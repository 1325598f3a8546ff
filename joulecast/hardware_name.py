"""The one rule for a hardware name, checked wherever a name enters joulecast.

A hardware name labels stored rows and names the folder its predictors are published in
(``artifacts/predictors/<name>/``), so it must be safe as one path component and short enough
to read: 1-128 characters of ASCII letters, digits, '.', '_' and '-', starting with a letter or
a digit (so never '.', '..', a path or a flag). Every name joulecast makes itself fits:
``cpu-amd-epyc``, ``xeon-gold-5120-2c``, ``quadro-rtx6000``, ``h200``, ``replay-<trace stem>``
and the slugs of GPU and CPU model names (``collector.hardware.slug``, at most 52 characters).

Checked by :func:`joulecast.measurement.check_row` (so AddMeasurements, ``joulecast import`` and
every store write), by ``collect --hardware``, the campaign's ``--hardware``, ``fit``, Retrain,
PredictEnergy and publishing, each before anything is stored or fitted.
"""

from __future__ import annotations

import re

from joulecast.errors import InvalidArgument

MAX_HARDWARE_CHARS = 128
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_HARDWARE_CHARS - 1}}}", re.ASCII)
RULE = (
    f"1-{MAX_HARDWARE_CHARS} characters of letters, digits, '.', '_' and '-', starting with a "
    "letter or digit"
)
_SHOWN_CHARS = 40
"""Characters of a refused name quoted in the reason (a 64 KiB name must not make the reply
64 KiB long)."""


def hardware_name_problem(name: object) -> str | None:
    """None when ``name`` is a valid hardware name, else a one-line reason."""
    if not isinstance(name, str):
        return f"hardware name must be text, got {type(name).__name__}"
    if _NAME.fullmatch(name):
        return None
    shown = repr(name[:_SHOWN_CHARS]) + ("..." if len(name) > _SHOWN_CHARS else "")
    return f"hardware name {shown} ({len(name)} characters) is not valid: use {RULE}"


def check_hardware_name(name: object) -> str:
    """``name`` if it is a valid hardware name; else InvalidArgument with a one-line reason."""
    problem = hardware_name_problem(name)
    if problem is not None:
        raise InvalidArgument(problem)
    return name  # type: ignore[return-value]


def check_hardware_query(name: object) -> str:
    """A hardware a prediction may ask about: a valid hardware name, or any name the GPU
    catalog knows a GPU by (``Tesla T4``, ``NVIDIA A100-SXM4-80GB``: what NVML and
    ``torch.cuda.get_device_name()`` report), which is only looked up, never stored nor used as
    a path; else InvalidArgument with the rule's one-line reason."""
    problem = hardware_name_problem(name)
    if problem is None:
        return name  # type: ignore[return-value]
    if isinstance(name, str) and len(name) <= MAX_HARDWARE_CHARS and name.isprintable():
        from joulecast.hardware import AmbiguousGpuName, find_gpu

        try:
            if find_gpu(name) is not None:
                return name
        except AmbiguousGpuName as exc:
            raise InvalidArgument(str(exc)) from exc
    raise InvalidArgument(problem)
