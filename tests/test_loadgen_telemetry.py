"""GPU telemetry (enginebench.loadgen.telemetry) against a fake NVML: the figures, the device
selection, the fallback without an energy counter, and its absence without NVML."""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from enginebench.loadgen import telemetry
from enginebench.loadgen.runner import main
from enginebench.metric_registry import metric
from enginebench.report.columns import present
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread

GPU_KEYS = {
    "gpu_count",
    "gpu_power_mean_w",
    "gpu_power_max_w",
    "gpu_energy_j",
    "gpu_energy_source",
    "gpu_memory_used_max_mib",
    "gpu_utilization_mean_pct",
    "gpu_telemetry_samples",
    "gpu_telemetry_window_s",
}


class NVMLError(Exception):
    pass


def fake_nvml(watts: tuple[float, ...] = (300.0, 100.0), energy: bool = True) -> types.ModuleType:
    """NVML of len(watts) GPUs, each at a constant power, with a driver energy counter that
    integrates it exactly (or none: NotSupported, as before Volta)."""
    nvml = types.ModuleType("pynvml")
    t0 = time.perf_counter()
    nvml.calls = []  # type: ignore[attr-defined]
    nvml.nvmlInit = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: len(watts)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByUUID = lambda u: int(u.rsplit("-", 1)[1])  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetPowerUsage = lambda h: int(watts[h] * 1000)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=(h + 1) * 1024 << 20)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=50 + 40 * h)  # type: ignore[attr-defined]

    def counter(h: int) -> int:
        if not energy:
            raise NVMLError("NotSupported")
        return 10**9 + int(watts[h] * (time.perf_counter() - t0) * 1000)  # mJ

    nvml.nvmlDeviceGetTotalEnergyConsumption = counter  # type: ignore[attr-defined]
    return nvml


def test_visible_handles_follow_cuda_visible_devices() -> None:
    nvml = fake_nvml((1.0, 2.0, 3.0))
    assert telemetry.visible_handles(nvml, None) == [0, 1, 2]
    assert telemetry.visible_handles(nvml, "2,0") == [2, 0]
    assert telemetry.visible_handles(nvml, "GPU-x-1") == [1]
    # as CUDA reads it: up to the first entry that names no device
    assert telemetry.visible_handles(nvml, "1,7,0") == [1]
    assert telemetry.visible_handles(nvml, "") == []


@pytest.mark.parametrize("energy", [True, False])
def test_figures_sum_the_gpus(energy: bool) -> None:
    sampler = telemetry.GpuSampler(fake_nvml(energy=energy), [0, 1], interval=0.02).start()
    time.sleep(0.3)
    figures = sampler.stop()
    assert figures.keys() == GPU_KEYS
    assert figures["gpu_count"] == 2
    assert figures["gpu_power_mean_w"] == figures["gpu_power_max_w"] == 400.0
    assert figures["gpu_memory_used_max_mib"] == 3 * 1024
    assert figures["gpu_utilization_mean_pct"] == 70.0
    assert figures["gpu_telemetry_samples"] >= 5
    # 400 W over the window: exact from the counter; from samples, the span between the first
    # and the last sample (a sampling interval shorter at most)
    window = figures["gpu_telemetry_window_s"]
    assert window >= 0.3
    if energy:
        assert figures["gpu_energy_source"] == "driver energy counter"
        assert figures["gpu_energy_j"] == pytest.approx(400 * window, rel=0.05)
    else:
        assert figures["gpu_energy_source"] == "power samples every 0.02 s"
        assert 400 * (window - 0.1) <= figures["gpu_energy_j"] <= 400 * window


def test_no_nvml_no_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as without the package
    assert telemetry.start("auto") is None
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    assert telemetry.start("off") is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU given to the run
    assert telemetry.start("auto") is None
    nvml = fake_nvml()

    def unknown(uuid: str) -> int:
        raise NVMLError("NotFound")

    nvml.nvmlDeviceGetHandleByUUID = unknown  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-gone-0")  # a GPU NVML does not know
    assert telemetry.start("auto") is None


def test_per_joule() -> None:
    assert telemetry.per_joule({"total_output_tokens": 1000, "gpu_energy_j": 250.0}) == {
        "output_tokens_per_joule": 4.0
    }
    assert telemetry.per_joule({"total_output_tokens": 1000}) == {}


def _bench(tmp_path: Path, *extra: str) -> dict[str, Any]:
    cfg = FakeServerConfig(tokens=6, token_delay_s=0.01)
    with serve_in_thread(cfg) as srv:
        argv = [
            "--base-url", srv.base_url, "--model", "fake-model",
            "--dataset-name", "fixed", "--fixed-output-len", "6", "--num-prompts", "8",
            "--request-rate", "40", "--save-result", "--result-dir", str(tmp_path),
            "--result-filename", "r.json", *extra,
        ]  # fmt: skip
        assert main(argv) == 0
    return json.loads((tmp_path / "r.json").read_text())


def test_summary_carries_telemetry_and_tokens_per_joule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml((250.0,)))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    summary = _bench(tmp_path)
    assert summary.keys() >= GPU_KEYS | {"output_tokens_per_joule"}
    assert summary["gpu_count"] == 1 and summary["gpu_power_mean_w"] == 250.0
    # the window spans the measured requests (not the warm-up or the setup)
    assert summary["gpu_telemetry_window_s"] >= summary["duration"]
    assert summary["output_tokens_per_joule"] == pytest.approx(
        summary["total_output_tokens"] / summary["gpu_energy_j"]
    )
    assert "GPU telemetry" in capsys.readouterr().out


def test_without_gpu_the_keys_are_absent_and_the_tables_leave_them_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    summary = _bench(tmp_path)
    assert not summary.keys() & (GPU_KEYS | {"output_tokens_per_joule"})
    import pandas as pd

    col = metric("gpu_power_mean_w").column()
    assert col.optional
    assert present([col], pd.DataFrame({"x": [1]})) == []
    assert present([col], pd.DataFrame({"gpu_power_mean_w": [None, None]})) == []
    assert present([col], pd.DataFrame({"gpu_power_mean_w": [None, 3.0]})) == [col]
