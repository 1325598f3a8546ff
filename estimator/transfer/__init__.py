"""The GPU transfer model: training energy on any catalogued GPU, from measurements of others.

``model`` holds the equations, ``fit`` and ``evaluate`` fit and score them, ``artifact`` publishes
and loads the fitted model, ``answer`` turns it into one served estimate.
"""

from estimator.transfer.artifact import TransferModel
from estimator.transfer.gpu import GpuRates

__all__ = ["GpuRates", "TransferModel"]
