"""Memory-bandwidth roofline for decode: how close a measured tok/s comes to what bandwidth allows.

Decoding one token (batch 1) reads every weight once plus the KV cache so far, so

    bytes_per_token = weight_bytes + kv_bytes
    kv_bytes        = 2 (K and V) x n_layers x n_kv_heads x head_dim x L x bytes_per_elem
    bound_tok_s     = bandwidth_bytes_per_s / bytes_per_token
    percent         = measured_tok_s / bound_tok_s x 100

with L the context the token attends to (for a `tgN @ dD` run the mean is about D + N/2).
Assumes dense weights and full attention: a MoE reads only its active experts and a sliding
window caps L, so there the bound is low (pessimistic), not high.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

TB = 1e12
# Datasheet bandwidth by words of `nvidia-smi --query-gpu=name`; first match wins, so a more
# specific entry (3090 Ti, A100 80GB PCIe) sits above the one it would otherwise fall into.
# Whole words, so "L4" does not match "L40S", "A10" not "A100", "H200" not "GH200".
GPU_BANDWIDTH: tuple[tuple[tuple[str, ...], str, float], ...] = (
    (("h200",), "NVIDIA H200", 4.8 * TB),
    (("h100", "nvl"), "NVIDIA H100 NVL", 3.9 * TB),
    (("h100", "pcie"), "NVIDIA H100 PCIe", 2.0 * TB),
    (("h100", "hbm3"), "NVIDIA H100 SXM", 3.35 * TB),  # nvidia-smi: "NVIDIA H100 80GB HBM3"
    (("h100", "sxm5"), "NVIDIA H100 SXM", 3.35 * TB),
    (("a100", "80gb", "pcie"), "NVIDIA A100 80GB PCIe", 1.935 * TB),
    (("a100", "80gb"), "NVIDIA A100 80GB SXM", 2.039 * TB),  # "NVIDIA A100-SXM4-80GB"
    (("a100", "40gb"), "NVIDIA A100 40GB", 1.555 * TB),  # SXM4 and PCIe alike
    (("rtx", "4090"), "NVIDIA RTX 4090", 1.008 * TB),
    (("rtx", "3090", "ti"), "NVIDIA RTX 3090 Ti", 1.008 * TB),
    (("rtx", "3090"), "NVIDIA RTX 3090", 0.936 * TB),
    (("l40s",), "NVIDIA L40S", 0.864 * TB),
    (("l40",), "NVIDIA L40", 0.864 * TB),
    (("a10",), "NVIDIA A10", 0.6 * TB),
    (("l4",), "NVIDIA L4", 0.3 * TB),
)
# Bytes per KV element by llama.cpp cache type (llama-bench's type_k / type_v): quantized types
# are blocks of 32 values plus fp16 scale(s) (ggml/src/ggml-common.h).
GGML_KV_TYPE_BYTES: dict[str, float] = {
    "f32": 4, "f16": 2, "bf16": 2,
    "q8_0": 34 / 32, "q4_0": 18 / 32, "q4_1": 20 / 32,
    "q5_0": 22 / 32, "q5_1": 24 / 32, "iq4_nl": 18 / 32,
}  # fmt: skip


@dataclass(frozen=True)
class Bandwidth:
    bytes_per_s: float
    source: str  # "datasheet: NVIDIA H200", "config", "measured: numpy copy, ..."
    samples_bytes_per_s: tuple[float, ...] = ()  # the measured runs, when measured


@dataclass(frozen=True)
class Roofline:
    weight_bytes: float
    kv_bytes: float
    bytes_per_token: float
    bandwidth_bytes_per_s: float
    bandwidth_source: str
    bound_tok_s: float
    measured_tok_s: float | None
    percent_of_bound: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_bandwidth(name: str) -> Bandwidth | None:
    """Datasheet bandwidth of one GPU as nvidia-smi names it, or None when not in the table."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if words & {"laptop", "mobile"}:  # same model numbers, far less bandwidth
        return None
    for keys, label, bps in GPU_BANDWIDTH:
        if words.issuperset(keys):
            return Bandwidth(bps, f"datasheet: {label}")
    return None


def _llc_mib() -> int | None:
    """Size of the largest CPU cache (sysfs), in MiB."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            m = re.fullmatch(r"(\d+)([KMG]?)", f.read_text().strip())
        except OSError:
            continue
        if m:
            sizes.append(int(m[1]) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m[2]] // 2**20)
    return max(sizes, default=None)


def measure_cpu_bandwidth(
    size_mib: int | None = None,
    runs: int = 10,
    max_seconds: float = 2.0,
    threads: int | None = None,
) -> Bandwidth:
    """Best copy bandwidth of np.copyto between two preallocated arrays, split over threads.

    Counts read + write (2 x size per copy, as STREAM's copy does). The best of the runs, as
    STREAM reports: a run is only ever slowed (by another process, a page fault, a frequency
    dip), never sped up, so the best is the closest to what the memory can do, and a median
    taken on a busy machine sat below what a decode point had just reached. size_mib defaults
    to the last-level cache size (at least 256, at most 1024) so that the two arrays do not fit
    in it; threads defaults to the CPUs this process may use (decode runs on all of them, and
    one thread alone does not reach the memory bandwidth). Runs stop once max_seconds have
    passed (after at least one).
    """
    if size_mib is None:
        size_mib = min(max(256, _llc_mib() or 0), 1024)
    if size_mib <= 0 or runs <= 0:
        raise ValueError("size_mib and runs must be positive")
    threads = threads or len(os.sched_getaffinity(0))
    n = size_mib * 2**20
    src, dst = np.empty(n, np.uint8), np.empty(n, np.uint8)
    parts = list(itertools.pairwise(n * i // threads for i in range(threads + 1)))

    def touch(ab: tuple[int, int]) -> None:
        # each thread first-touches its own part, so pages sit on its NUMA node
        src[ab[0] : ab[1]].fill(1)
        dst[ab[0] : ab[1]].fill(0)

    def copy(ab: tuple[int, int]) -> None:
        np.copyto(dst[ab[0] : ab[1]], src[ab[0] : ab[1]])  # releases the GIL

    samples: list[float] = []
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(touch, parts))
        list(pool.map(copy, parts))  # warm-up
        deadline = time.perf_counter() + max_seconds
        while len(samples) < runs and (not samples or time.perf_counter() < deadline):
            t0 = time.perf_counter()
            list(pool.map(copy, parts))
            samples.append(2 * n / (time.perf_counter() - t0))
    source = (
        f"measured: numpy copy, {size_mib} MiB, best of {len(samples)} runs, "
        f"{threads} thread{'s' if threads > 1 else ''}, read+write counted (2 x size per copy)"
    )
    return Bandwidth(max(samples), source, tuple(samples))


def kv_cache_bytes(
    n_layers: int, n_kv_heads: int, head_dim: int, context_len: float, bytes_per_elem: float = 2
) -> float:
    """KV bytes read for one token at context length context_len (K and V, every layer)."""
    return 2 * n_layers * n_kv_heads * head_dim * context_len * bytes_per_elem


def kv_shape_from_config(config: Mapping[str, Any]) -> tuple[int, int, int]:
    """(n_layers, n_kv_heads, head_dim) from a HF config.json (its text_config if nested)."""
    if "num_hidden_layers" not in config and isinstance(config.get("text_config"), Mapping):
        config = config["text_config"]
    try:
        n_layers = int(config["num_hidden_layers"])
        n_heads = int(config["num_attention_heads"])
        n_kv = config.get("num_key_value_heads")
        head_dim = config.get("head_dim")
        n_kv_heads = int(n_kv) if n_kv is not None else n_heads
        head_dim = int(head_dim) if head_dim is not None else int(config["hidden_size"]) // n_heads
    except KeyError as e:
        raise ValueError(f"config.json has no {e.args[0]!r}: cannot size the KV cache") from e
    return n_layers, n_kv_heads, head_dim


# bytes per element of the dtypes MLC's tensor cache lists
_MLC_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "uint32": 4, "int32": 4,
                    "int8": 1, "uint8": 1, "float8_e4m3fn": 1, "float8_e5m2": 1}  # fmt: skip


def weights_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes of weights a server loads: a file's size (GGUF); an MLC folder's tensors at their
    dtype in memory (tensor-cache.json: MLC stores float32 as bfloat16 on disk, and converts it
    back when it loads); else a folder's *.safetensors (else *.bin) files summed."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    if not p.is_dir():
        raise ValueError(f"{p}: no such file or folder")
    if (cache := p / "tensor-cache.json").is_file():
        shards = json.loads(cache.read_text())["records"]
        tensors = [t for shard in shards for t in shard["records"]]
        return sum(math.prod(t["shape"]) * _MLC_DTYPE_BYTES[t["dtype"]] for t in tensors)
    files = sorted(p.glob("*.safetensors")) or sorted(p.glob("*.bin"))
    if not files:
        raise ValueError(f"{p}: no *.safetensors or *.bin files")
    return sum(f.stat().st_size for f in files)


def roofline(
    weight_bytes: float,
    kv_bytes: float,
    bandwidth: Bandwidth,
    measured_tok_s: float | None = None,
) -> Roofline:
    """The decode bound (see the module docstring) and the share of it measured_tok_s reached."""
    per_token = weight_bytes + kv_bytes
    if per_token <= 0 or bandwidth.bytes_per_s <= 0:
        raise ValueError("bytes per token and bandwidth must be positive")
    bound = bandwidth.bytes_per_s / per_token
    percent = None if measured_tok_s is None else measured_tok_s / bound * 100
    return Roofline(
        weight_bytes=weight_bytes,
        kv_bytes=kv_bytes,
        bytes_per_token=per_token,
        bandwidth_bytes_per_s=bandwidth.bytes_per_s,
        bandwidth_source=bandwidth.source,
        bound_tok_s=bound,
        measured_tok_s=measured_tok_s,
        percent_of_bound=percent,
    )


def bandwidth_record(
    cpu: Bandwidth, gpu_names: Sequence[str], given_gb_s: float | None
) -> dict[str, Any]:
    """What results/hardware/bandwidth.json holds: the CPU's measured bandwidth, the first
    GPU's datasheet one (None: no GPU, or one the table lacks), the config's (None: unset)."""
    gpu = gpu_bandwidth(gpu_names[0]) if gpu_names else None
    return {
        "cpu": {"bytes_per_s": cpu.bytes_per_s, "source": cpu.source,
                "samples": list(cpu.samples_bytes_per_s)},
        "gpu": {"name": gpu_names[0], "bytes_per_s": gpu.bytes_per_s, "source": gpu.source}
        if gpu else None,
        "config": {"bytes_per_s": float(given_gb_s) * 1e9,
                   "source": "config: roofline.bandwidth_gb_s"} if given_gb_s else None,
    }  # fmt: skip


def best_of(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One `bandwidth_record` from those measured at several times (`when` -> record: before
    and after the sweeps): the CPU's best of them, each kept (`cpu.measurements`), so that a
    measurement taken while the machine was busy does not lower the bound."""
    if not records:
        raise ValueError("no bandwidth record")
    first = dict(next(iter(records.values())))
    cpus = {when: r["cpu"] for when, r in records.items() if r.get("cpu")}
    if cpus:
        best = max(cpus.values(), key=lambda c: float(c["bytes_per_s"]))
        shown = " and ".join(
            f"{w} the sweeps {float(c['bytes_per_s']) / 1e9:.1f} GB/s" for w, c in cpus.items()
        )
        first["cpu"] = {
            **best,
            "source": f"{best['source']}; the higher of {shown}",
            "measurements": {w: float(c["bytes_per_s"]) for w, c in cpus.items()},
        }
    return first


def chosen_bandwidth(record: Mapping[str, Any], gpu: bool) -> Bandwidth | None:
    """From a `bandwidth_record`, the bandwidth a result is held against: the config's, else
    the GPU's (a result served on the GPU) or the CPU's."""
    chosen = record.get("config") or (record.get("gpu") if gpu else record.get("cpu"))
    if not chosen:
        return None
    return Bandwidth(float(chosen["bytes_per_s"]), str(chosen["source"]))
