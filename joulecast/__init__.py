"""joulecast: predict the energy of training and testing a neural network before spending it.

The public Python API, kept stable (everything else is internal)::

    import joulecast
    est = joulecast.Estimator()            # or Estimator("path/to/artifacts"), Estimator(server=...)
    p = est.predict(model, example_input, batch_size=32, samples=50_000, epochs=10, region="FRA")
    p.train.energy_j, p.train.interval_j, p.test, p.co2_g, p.warnings, p.to_dict()
    est.predict_table(model, example_input, batch_sizes=[8, 64, 256])

:class:`Estimator`, :class:`Prediction`, :class:`PhaseEstimate`, and the errors of
:mod:`joulecast.errors` (every one a :class:`JoulecastError`). ``import joulecast`` imports
nothing heavy (no torch, onnx, numpy, gRPC or XGBoost): the API loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from joulecast.errors import ExportError, JoulecastError

if TYPE_CHECKING:
    from joulecast.api.estimate import Estimator
    from joulecast.api.prediction import PhaseEstimate, Prediction

__version__ = "0.1.0"
__all__ = ["Estimator", "ExportError", "JoulecastError", "PhaseEstimate", "Prediction"]

_LAZY = {
    "Estimator": "joulecast.api.estimate",
    "Prediction": "joulecast.api.prediction",
    "PhaseEstimate": "joulecast.api.prediction",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'joulecast' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
