"""The GPU hardware catalog: published figures of GPUs, and finding one by any of its names.

Vendor peak figures (datasheets, whitepapers), not measurements; see :mod:`.catalog`.
"""

from joulecast.hardware.catalog import CatalogError, load_catalog
from joulecast.hardware.lookup import AmbiguousGpuName, find_gpu, find_one_gpu
from joulecast.hardware.spec import PRECISIONS, GpuSpec, Precision, peak_flops

__all__ = [
    "PRECISIONS",
    "AmbiguousGpuName",
    "CatalogError",
    "GpuSpec",
    "Precision",
    "find_gpu",
    "find_one_gpu",
    "load_catalog",
    "peak_flops",
]
