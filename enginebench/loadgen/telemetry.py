"""GPU telemetry over a point's measured window, through NVML (`nvidia-ml-py`, imported as
`pynvml`): power, memory used, utilization and energy, summed over the GPUs the server may use.

A thread samples every `interval` seconds from `start()` to `stop()`: NVML's calls are C calls
through ctypes (the GIL is released), so the event loop that times the requests is not held up.
Energy comes from the driver's cumulative counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ,
Volta and later) when every GPU has one, else from the power samples (trapezoid rule).

Without NVML (no GPU, no driver, no `pynvml`) nothing is sampled and the summary carries no GPU
key at all: the tables show such figures as absent, never as zero.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

DEFAULT_INTERVAL_S = 0.1
_MIB = 1 << 20


def load_nvml() -> ModuleType | None:
    """pynvml, initialized; None where there is no NVML to talk to."""
    try:
        nvml = importlib.import_module("pynvml")
        nvml.nvmlInit()
    except Exception:  # no module, no driver (NVMLError_LibraryNotFound), no GPU
        return None
    return nvml


def visible_handles(nvml: Any, visible: str | None) -> list[Any]:
    """The GPUs CUDA_VISIBLE_DEVICES names (indices or UUIDs, as CUDA reads it: up to the first
    invalid entry), else every GPU. The server inherits the same variable from the run."""
    count = nvml.nvmlDeviceGetCount()
    if visible is None:
        return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    handles = []
    for entry in (e.strip() for e in visible.split(",")):
        if entry.isdigit() and int(entry) < count:
            handles.append(nvml.nvmlDeviceGetHandleByIndex(int(entry)))
        elif entry.startswith(("GPU-", "MIG-")):
            handles.append(nvml.nvmlDeviceGetHandleByUUID(entry))
        else:
            break
    return handles


@dataclass
class _Samples:
    t: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)  # summed over the GPUs
    mem_mib: list[float] = field(default_factory=list)  # summed over the GPUs
    util_pct: list[float] = field(default_factory=list)  # mean over the GPUs


class GpuSampler:
    def __init__(self, nvml: Any, handles: Sequence[Any], interval: float = DEFAULT_INTERVAL_S):
        self.nvml, self.handles, self.interval = nvml, list(handles), interval
        self.samples = _Samples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gpu-telemetry", daemon=True)
        self._energy0: list[int] | None = None
        self._t0 = self._t1 = 0.0

    def _energy_mj(self) -> list[int] | None:
        try:
            return [self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles]
        except Exception:  # NVMLError_NotSupported before Volta
            return None

    def _sample(self) -> None:
        n = self.nvml
        power = mem = util = 0.0
        for h in self.handles:
            power += n.nvmlDeviceGetPowerUsage(h) / 1000.0  # mW
            mem += n.nvmlDeviceGetMemoryInfo(h).used / _MIB
            util += n.nvmlDeviceGetUtilizationRates(h).gpu
        s = self.samples
        s.t.append(time.perf_counter())
        s.power_w.append(power)
        s.mem_mib.append(mem)
        s.util_pct.append(util / len(self.handles))

    def _loop(self) -> None:
        while True:
            try:
                self._sample()
            except Exception:  # a GPU that stops answering: keep what was sampled
                return
            if self._stop.wait(self.interval):
                return

    def start(self) -> GpuSampler:
        self._energy0 = self._energy_mj()
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        """Ends sampling; the window's figures as summary keys (empty when nothing was read)."""
        self._stop.set()
        self._thread.join()
        self._t1 = time.perf_counter()
        energy1 = self._energy_mj()
        return self.figures(energy1)

    def figures(self, energy1: list[int] | None) -> dict[str, Any]:
        s = self.samples
        if not s.t:
            return {}
        window = self._t1 - self._t0
        if self._energy0 is not None and energy1 is not None:
            energy = sum(b - a for a, b in zip(self._energy0, energy1, strict=True)) / 1000.0
            source = "driver energy counter"
        else:
            energy = _trapezoid(s.t, s.power_w) if len(s.t) > 1 else s.power_w[0] * window
            source = f"power samples every {self.interval:g} s"
        return {
            "gpu_count": len(self.handles),
            "gpu_telemetry_window_s": window,
            "gpu_telemetry_samples": len(s.t),
            "gpu_power_mean_w": sum(s.power_w) / len(s.power_w),
            "gpu_power_max_w": max(s.power_w),
            "gpu_energy_j": energy,
            "gpu_energy_source": source,
            "gpu_memory_used_max_mib": max(s.mem_mib),
            "gpu_utilization_mean_pct": sum(s.util_pct) / len(s.util_pct),
        }


def _trapezoid(t: Sequence[float], y: Sequence[float]) -> float:
    return sum((t[i] - t[i - 1]) * (y[i] + y[i - 1]) / 2 for i in range(1, len(t)))


def start(mode: str, interval: float = DEFAULT_INTERVAL_S) -> GpuSampler | None:
    """A running sampler (`--gpu-telemetry auto`), or None: off, or no NVML, or no GPU."""
    if mode == "off":
        return None
    nvml = load_nvml()
    if nvml is None:
        return None
    try:
        handles = visible_handles(nvml, os.environ.get("CUDA_VISIBLE_DEVICES"))
    except Exception:  # a UUID NVML does not know (NVMLError_NotFound): no figures, no crash
        return None
    return GpuSampler(nvml, handles, interval).start() if handles else None


def per_joule(summary: dict[str, Any]) -> dict[str, Any]:
    """Output tokens per joule of GPU energy in the window (absent without telemetry)."""
    energy = summary.get("gpu_energy_j")
    if not energy or energy <= 0:
        return {}
    return {"output_tokens_per_joule": summary["total_output_tokens"] / energy}
