"""The NVML meter on a real NVIDIA GPU (skipped where there is none)."""

from __future__ import annotations

import pytest

from collector.meters.nvml import NvmlMeter
from joulecast.measurement import SOURCE_NVML_COUNTER, SOURCE_NVML_INTEGRAL


@pytest.mark.gpu
def test_real_gpu_window() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    x = torch.randn(4096, 4096, device="cuda")
    with NvmlMeter(gpu_index=0) as meter:
        idle_w = meter.calibrate_idle(0.5)
        meter.begin_window("matmul", sync=torch.cuda.synchronize)
        for _ in range(200):
            x = (x @ x).clamp_(-1, 1)
        m = meter.end_window("matmul", sync=torch.cuda.synchronize)
        facts = meter.describe()
    assert m.energy_source in (SOURCE_NVML_COUNTER, SOURCE_NVML_INTEGRAL)
    assert m.energy_j > 0 and m.duration_s > 0
    assert idle_w is not None and 0 < idle_w < m.power_mean_w
    assert m.gpu_util_mean is not None and m.trace
    assert facts["device_name"] and facts["driver"]
    # every NVIDIA board since Kepler enforces a limit between tens of watts and ~1.5 kW
    assert m.power_limit_w is None or 10 <= m.power_limit_w <= 1500
    # this process holds a CUDA context: where NVML lists processes, it counts at least one
    listed = [n for n in m.notes if n.startswith("gpu_processes=")]
    assert not listed or int(listed[0].split("=")[1]) >= 1
