"""Facts about the machine a measurement ran on: names, versions, a default hardware id."""

from __future__ import annotations

import json
import platform
import re
from functools import cache
from pathlib import Path

from joulecast.errors import InvalidArgument
from joulecast.hardware_name import check_hardware_name
from joulecast.measurement import hardware_claim_problem


@cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none)."""
    cpuinfo = Path("/proc/cpuinfo")
    fields: dict[str, str] = {}
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def cpu_name() -> str:
    """The CPU's model name, from /proc/cpuinfo where it exists (what default ids are made of)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_model() -> str:
    """The CPU's model name with its family, model and stepping numbers where /proc/cpuinfo
    gives them: a VM may name its CPU only "AMD EPYC", and two generations behind that name
    ran the same work at 0.5-0.7x each other's CPU time."""
    info = _cpuinfo()
    numbers = [f"{k} {info[k]}" for k in ("cpu family", "model", "stepping") if info.get(k)]
    name = cpu_name()
    return f"{name} ({', '.join(numbers)})" if numbers else name


def slug(text: str) -> str:
    """Lower-case id made of letters, digits and dashes: 'Tesla T4' -> 'tesla-t4'."""
    text = re.sub(r"\((r|tm)\)|cpu @.*$|processor", " ", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:48] or "unknown"


def cuda_device_name(index: int = 0) -> str:
    import torch  # only to name a CUDA device: naming a CPU and slugging stay free of torch

    if not torch.cuda.is_available():
        raise InvalidArgument("--device cuda: no CUDA device is available (use --device cpu)")
    if not 0 <= index < torch.cuda.device_count():
        raise InvalidArgument(
            f"--device cuda:{index}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return torch.cuda.get_device_name(index)


def gpu_hardware_id(device_name: str) -> str:
    """A GPU's default hardware id: the catalog's id for the name NVML gives ('NVIDIA H200' ->
    'h200', the id ``predict --hardware`` and a calibration read), else that name slugged."""
    from joulecast.hardware import find_one_gpu

    spec = find_one_gpu(device_name)
    return spec.id if spec is not None else slug(device_name)


def default_hardware(device: str) -> str:
    """Hardware id that keeps predictors apart: on cuda the GPU's (:func:`gpu_hardware_id`);
    on cpu 'cpu-<name>' with the family and model numbers where /proc/cpuinfo gives them
    ('cpu-amd-epyc-f26m2'): a VM's CPU name ("AMD EPYC", "Intel(R) Xeon(R) Processor") is the
    same across generations that spent 0.4-1.1x each other's CPU time on the same work, and one
    id for both would mix their rows in one predictor."""
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else 0
        return gpu_hardware_id(cuda_device_name(index))
    info = _cpuinfo()
    family, model = info.get("cpu family", ""), info.get("model", "")
    numbers = f"-f{family}m{model}" if family.isdigit() and model.isdigit() else ""
    return "cpu-" + slug(cpu_name()) + numbers


def sweep_hardware(
    device: str, meter_kind: str, trace: str | None = None, explicit: str | None = None
) -> str:
    """The hardware id of a sweep's rows: ``explicit`` when given, the recorded trace's name for
    the replay meter, else :func:`default_hardware` of this machine (each Ray worker asks its
    own, so a mixed cluster's rows carry each one's hardware). Every one obeys the one
    hardware-name rule (:mod:`joulecast.hardware_name`), and an explicit name of a catalogued
    GPU is refused at once for a CPU's rows or a replay's (a GPU's own name is checked against
    the device when the meter opens): InvalidArgument says why not."""
    if explicit:
        check_hardware_name(explicit)
        if meter_kind == "replay" or not device.startswith("cuda"):
            problem = hardware_claim_problem(explicit, device, None, meter_kind)
            if problem is not None:
                raise InvalidArgument(problem)
        return explicit
    if meter_kind == "replay":
        return check_hardware_name(f"replay-{Path(trace or 'trace').stem}")
    return check_hardware_name(default_hardware(device))


@cache
def software_versions() -> str:
    """JSON of the versions that shape a measurement."""
    from importlib.metadata import PackageNotFoundError, version

    import torch  # only when versions are recorded: the CPU meter and --help need no torch

    found = {"python": platform.python_version(), "torch_cuda": torch.version.cuda}
    for name in ("torch", "deepspeed", "codecarbon", "nvidia-ml-py", "joulecast", "librosa"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return json.dumps(found, sort_keys=True)
