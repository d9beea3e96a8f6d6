"""Roofline arithmetic, the GPU bandwidth table and the short CPU copy-bandwidth measurement."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from enginebench.roofline import (
    Bandwidth,
    gpu_bandwidth,
    kv_cache_bytes,
    kv_shape_from_config,
    measure_cpu_bandwidth,
    roofline,
    weights_bytes,
)


def test_issue_example_h200() -> None:
    """4.08 GB of weights per token at 4.8 TB/s: ~1,176 tok/s; 274 tok/s is ~23% of it."""
    bw = gpu_bandwidth("NVIDIA H200")
    assert bw == Bandwidth(4.8e12, "datasheet: NVIDIA H200")
    r = roofline(4.08e9, 0, bw, 274)
    assert r.bytes_per_token == 4.08e9
    assert r.bound_tok_s == pytest.approx(1176.47, abs=0.01)
    assert r.percent_of_bound == pytest.approx(23.29, abs=0.01)
    d = r.as_dict()
    assert d["bandwidth_source"] == "datasheet: NVIDIA H200"
    assert d["bandwidth_bytes_per_s"] == 4.8e12 and d["measured_tok_s"] == 274


def test_roofline_with_kv_and_without_measurement() -> None:
    bw = Bandwidth(1e12, "config")
    r = roofline(900e6, 100e6, bw)
    assert r.bytes_per_token == 1e9 and r.bound_tok_s == pytest.approx(1000)
    assert r.percent_of_bound is None and r.measured_tok_s is None
    assert roofline(1e9, 0, bw, 1000).percent_of_bound == pytest.approx(100)
    with pytest.raises(ValueError, match="positive"):
        roofline(0, 0, bw, 1)
    with pytest.raises(ValueError, match="positive"):
        roofline(1, 0, Bandwidth(0, "config"), 1)


def test_kv_cache_bytes() -> None:
    # Llama-3.1-8B: 32 layers, 8 KV heads, head_dim 128, f16 -> 128 KiB per token of context
    assert kv_cache_bytes(32, 8, 128, 1) == 131072
    assert kv_cache_bytes(32, 8, 128, 4096) == 4096 * 131072  # 512 MiB at 4k
    assert kv_cache_bytes(32, 8, 128, 1024, bytes_per_elem=1) == 1024 * 65536
    assert kv_cache_bytes(2, 1, 4, 0) == 0


def test_kv_shape_from_config() -> None:
    llama = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
             "hidden_size": 4096}  # fmt: skip
    assert kv_shape_from_config(llama) == (32, 8, 128)
    mha = {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64}
    assert kv_shape_from_config(mha) == (2, 4, 16)  # KV heads default to attention heads
    explicit = {**llama, "head_dim": 256, "num_key_value_heads": None}  # head_dim != hidden/heads
    assert kv_shape_from_config(explicit) == (32, 32, 256)
    assert kv_shape_from_config({"text_config": llama, "vision_config": {}}) == (32, 8, 128)
    with pytest.raises(ValueError, match="no 'num_hidden_layers'"):
        kv_shape_from_config({"num_attention_heads": 4})


@pytest.mark.parametrize(
    ("name", "tb_per_s"),
    [
        ("NVIDIA H200", 4.8),
        ("NVIDIA H200 NVL", 4.8),
        ("NVIDIA H100 80GB HBM3", 3.35),
        ("NVIDIA H100 PCIe", 2.0),
        ("NVIDIA H100 NVL", 3.9),
        ("NVIDIA A100-SXM4-80GB", 2.039),
        ("NVIDIA A100 80GB PCIe", 1.935),
        ("NVIDIA A100-SXM4-40GB", 1.555),
        ("NVIDIA A100-PCIE-40GB", 1.555),
        ("NVIDIA GeForce RTX 4090", 1.008),
        ("NVIDIA GeForce RTX 3090 Ti", 1.008),
        ("NVIDIA GeForce RTX 3090", 0.936),
        ("NVIDIA L40S", 0.864),
        ("NVIDIA A10", 0.6),
        ("NVIDIA L4", 0.3),
    ],
)
def test_gpu_table(name: str, tb_per_s: float) -> None:
    bw = gpu_bandwidth(name)
    assert bw is not None and bw.bytes_per_s == pytest.approx(tb_per_s * 1e12)
    assert bw.source.startswith("datasheet: NVIDIA")


def _source(name: str) -> str | None:
    bw = gpu_bandwidth(name)
    return bw.source if bw else None


def test_gpu_names_told_apart() -> None:
    assert _source("NVIDIA GeForce RTX 3090 Ti") == "datasheet: NVIDIA RTX 3090 Ti"
    assert _source("NVIDIA GeForce RTX 3090") == "datasheet: NVIDIA RTX 3090"
    h100s = ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL")
    assert [_source(n) for n in h100s] == [
        "datasheet: NVIDIA H100 SXM", "datasheet: NVIDIA H100 PCIe", "datasheet: NVIDIA H100 NVL",
    ]  # fmt: skip
    assert _source("NVIDIA L40") == "datasheet: NVIDIA L40"  # not L40S, not L4
    assert _source("nvidia l40s") == "datasheet: NVIDIA L40S"  # case does not matter


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA GH200 480GB",  # whole words: not H200
        "NVIDIA A10G",  # not A10
        "NVIDIA H100",  # which H100 is unknown
        "NVIDIA GeForce RTX 4090 Laptop GPU",  # same number, less bandwidth
        "Tesla T4",
        "AMD Instinct MI300X",
        "",
    ],
)
def test_unknown_gpus(name: str) -> None:
    assert gpu_bandwidth(name) is None


def test_mlc_weights_count_at_their_dtype_in_memory(tmp_path: Path) -> None:
    """MLC stores float32 as bfloat16 on disk (format f32-to-bf16) and widens it on loading: the
    tensors at their dtype, not the shard's size (as mlc_llm convert_weight wrote for q4f32_1)."""
    (tmp_path / "params_shard_0.bin").write_bytes(b"x" * 10)
    shard = {"dataPath": "params_shard_0.bin", "format": "raw-shard", "nbytes": 10, "records": [
        {"name": "lm_head.q_weight", "shape": [4096, 32], "dtype": "uint32",
         "format": "f32-to-bf16", "nbytes": 524288, "byteOffset": 0},
        {"name": "lm_head.q_scale", "shape": [4096, 8], "dtype": "float32",
         "format": "f32-to-bf16", "nbytes": 65536, "byteOffset": 524288},
    ]}  # fmt: skip
    (tmp_path / "tensor-cache.json").write_text(json.dumps({"metadata": {}, "records": [shard]}))
    assert weights_bytes(tmp_path) == 4096 * 32 * 4 + 4096 * 8 * 4


def test_weights_bytes(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x" * 1000)
    assert weights_bytes(gguf) == 1000
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "model-00001-of-00002.safetensors").write_bytes(b"x" * 300)
    (hf / "model-00002-of-00002.safetensors").write_bytes(b"x" * 200)
    (hf / "pytorch_model.bin").write_bytes(b"x" * 5000)  # ignored: safetensors are what loads
    (hf / "config.json").write_text("{}")
    assert weights_bytes(hf) == 500
    old = tmp_path / "old"
    old.mkdir()
    (old / "pytorch_model.bin").write_bytes(b"x" * 70)
    assert weights_bytes(old) == 70
    with pytest.raises(ValueError, match=r"no \*\.safetensors or \*\.bin"):
        weights_bytes(_empty(tmp_path))
    with pytest.raises(ValueError, match="no such file"):
        weights_bytes(tmp_path / "nope")


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def test_cpu_bandwidth_bounded_and_repeatable() -> None:
    t0 = time.perf_counter()
    # the default size: larger than the last-level cache (64 MiB fits in some L3s, and then
    # one run can read the cache and the next the memory)
    a = measure_cpu_bandwidth(runs=3, max_seconds=1.0)
    b = measure_cpu_bandwidth(runs=3, max_seconds=1.0)
    assert time.perf_counter() - t0 < 15  # two short measurements; generous for a loaded CI
    assert a.bytes_per_s > 0 and b.bytes_per_s > 0
    assert 1 / 4 < a.bytes_per_s / b.bytes_per_s < 4
    assert 1 <= len(a.samples_bytes_per_s) <= 3
    assert a.source.startswith("measured: numpy copy, ") and " MiB, best of " in a.source
    assert "best of" in a.source and "2 x size per copy" in a.source
    assert a.bytes_per_s == max(a.samples_bytes_per_s)  # the best run: a run is only slowed


def test_cpu_bandwidth_default_finishes_quickly() -> None:
    t0 = time.perf_counter()
    bw = measure_cpu_bandwidth()
    assert time.perf_counter() - t0 < 5 and bw.bytes_per_s > 1e8


def test_cpu_bandwidth_stops_at_max_seconds() -> None:
    bw = measure_cpu_bandwidth(size_mib=16, runs=10_000, max_seconds=0.05, threads=1)
    assert 1 <= len(bw.samples_bytes_per_s) < 10_000 and "1 thread," in bw.source
    with pytest.raises(ValueError, match="positive"):
        measure_cpu_bandwidth(size_mib=0)


def test_bandwidth_record_and_the_choice_from_it() -> None:
    from enginebench.roofline import Bandwidth, bandwidth_record, chosen_bandwidth

    cpu = Bandwidth(30e9, "measured: test", (29e9, 30e9))
    record = bandwidth_record(cpu, ["NVIDIA H200"], None)
    assert record["cpu"] == {"bytes_per_s": 30e9, "source": "measured: test",
                             "samples": [29e9, 30e9]}  # fmt: skip
    assert record["gpu"]["source"] == "datasheet: NVIDIA H200" and record["config"] is None
    assert chosen_bandwidth(record, gpu=True) == Bandwidth(4.8e12, "datasheet: NVIDIA H200")
    assert chosen_bandwidth(record, gpu=False) == Bandwidth(30e9, "measured: test")
    assert bandwidth_record(cpu, ["Some Unknown GPU"], None)["gpu"] is None
    given = bandwidth_record(cpu, [], 100)
    assert chosen_bandwidth(given, gpu=False) == Bandwidth(1e11, "config: roofline.bandwidth_gb_s")


def test_the_higher_of_before_and_after_the_sweeps_holds() -> None:
    from enginebench.roofline import Bandwidth, bandwidth_record, best_of, chosen_bandwidth

    before = bandwidth_record(Bandwidth(8e9, "measured: x"), [], None)
    after = bandwidth_record(Bandwidth(12e9, "measured: y"), [], None)
    merged = best_of({"before": before, "after": after})
    assert merged["cpu"]["measurements"] == {"before": 8e9, "after": 12e9}
    chosen = chosen_bandwidth(merged, gpu=False)
    assert chosen is not None and chosen.bytes_per_s == 12e9
    assert chosen.source == (
        "measured: y; the higher of before the sweeps 8.0 GB/s and after the sweeps 12.0 GB/s"
    )
    with pytest.raises(ValueError, match="no bandwidth record"):
        best_of({})
