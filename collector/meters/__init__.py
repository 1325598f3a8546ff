"""Energy meters behind one interface (``EnergyMeter``); ``open_meter`` picks one.

Nothing here imports NVML or CodeCarbon: each meter imports its library when it is opened.
"""

from collector.meters.base import EnergyMeter, Measurement, MeterUnavailable
from collector.meters.select import KINDS, estimate_banner, open_meter

__all__ = [
    "KINDS",
    "EnergyMeter",
    "Measurement",
    "MeterUnavailable",
    "estimate_banner",
    "open_meter",
]
