"""The six training workloads of the Zeus NSDI '23 traces, rebuilt as weightless graphs."""

from collector.zeus_workloads.table import WORKLOADS, Workload, find_workload, workload_graph

__all__ = ["WORKLOADS", "Workload", "find_workload", "workload_graph"]
