"""Executors: where and in which order a sweep's runs are measured.

``serial`` (the default) measures in this process; ``ray`` hands each configuration-phase to a
Ray cluster's workers and writes their rows here. Both measure through
:func:`collector.runner.measure_run`.
"""

EXECUTORS = ("serial", "ray")
