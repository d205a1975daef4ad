"""Which devices torch can train on here, and how `auto` picks one."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nnstudio.core.errors import ConfigError


@dataclass(frozen=True)
class DeviceInfo:
    key: str  # what torch.device() takes: "cpu", "cuda:0", "mps"
    label: str  # what a person reads: "CUDA 0: NVIDIA H200 (139.8 GiB)"
    memory_bytes: int | None = None


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def list_devices() -> list[DeviceInfo]:
    devices = [DeviceInfo("cpu", "CPU")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gib = props.total_memory / 2**30
            devices.append(DeviceInfo(f"cuda:{index}", f"CUDA {index}: {props.name} ({gib:.1f} GiB)",
                                      props.total_memory))
    if _mps_available():
        devices.append(DeviceInfo("mps", "Apple MPS"))
    return devices


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` picks CUDA when available, then MPS, then CPU; an explicit choice must exist here."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device '{name}': use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{name}' asked for, but CUDA is not available on this machine; use auto or cpu")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device '{name}' asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if device.type == "mps" and not _mps_available():
        raise ConfigError(f"device '{name}' asked for, but MPS is not available on this machine; use auto or cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device '{name}': use auto, cpu, cuda, cuda:N or mps")
    return device
