"""Energy meters behind one interface (``EnergyMeter``)."""

from collector.meters.base import EnergyMeter, Measurement, TraceSample, is_estimate

__all__ = ["EnergyMeter", "Measurement", "TraceSample", "is_estimate"]
