"""Synthetic sweep results (summaries shaped like `enginebench bench`'s, and `server.json`).

For the report's tests and for previewing the report without running an engine. The numbers
follow a toy queueing shape (latency grows as the offered rate nears capacity); they are
not measurements of anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from enginebench.report.points import SweepPoint


def synthetic_summary(
    point: SweepPoint,
    *,
    num_prompts: int = 100,
    input_len: int = 128,
    output_len: int = 64,
    capacity: float = 8.0,
    base_ttft_ms: float = 40.0,
    base_tpot_ms: float = 12.0,
    failed: int = 0,
    short_outputs: int = 0,
    engine: str = "fake",
    model: str = "tiny",
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A summary for one sweep point of an engine serving `capacity` req/s at most.
    `provenance`: the block the sweep stamps on each point's summary (see
    `synthetic_provenance`); None leaves it out, as in summaries written before it existed."""
    completed = num_prompts - failed
    if point.mode == "rate":
        achieved = min(point.load, capacity * 0.98)
    else:
        achieved = capacity * point.load / (point.load + 2.0)
    load = min(achieved / capacity, 0.98)
    ttft = base_ttft_ms / (1.0 - load)
    tpot = base_tpot_ms * (1.0 + load)
    duration = num_prompts / achieved
    out_tokens = completed * output_len - short_outputs * (output_len // 2)
    summary: dict[str, Any] = {
        "date": "20250101-000000",
        "backend": "openai-chat",
        "model_id": model,
        "tokenizer_id": model,
        "num_prompts": num_prompts,
        "request_rate": "inf" if point.mode != "rate" or math.isinf(point.load) else point.load,
        "burstiness": 1.0,
        "max_concurrency": int(point.load) if point.mode == "concurrency" else None,
        "duration": duration,
        "completed": completed,
        "failed": failed,
        "total_input_tokens": completed * input_len,
        "total_output_tokens": out_tokens,
        "request_throughput": completed / duration,
        "request_goodput": None,
        "output_throughput": out_tokens / duration,
        "total_token_throughput": (completed * input_len + out_tokens) / duration,
        "input_throughput": completed * input_len / duration,
        "achieved_request_rate": num_prompts / duration,
        "short_outputs": short_outputs,
        "errors_by_kind": {"http_500": failed} if failed else {},
        "metadata": {"engine": engine, "model": model},
        "argv": ["enginebench", "bench", "--seed", "0", "--dataset-name", "random"],
        "enginebench_version": "0.1.0",
    }
    if point.mode == "concurrency":
        summary["concurrency"] = int(point.load)
    for metric, base in (
        ("ttft", ttft),
        ("tpot", tpot),
        ("itl", tpot),
        ("e2el", ttft + tpot * output_len),
    ):
        spread = {50: 1.0, 90: 1.4, 99: 2.0}
        summary[f"mean_{metric}_ms"] = base * 1.1
        summary[f"median_{metric}_ms"] = base
        summary[f"std_{metric}_ms"] = base * 0.3
        for pct, factor in spread.items():
            summary[f"p{pct}_{metric}_ms"] = base * factor
    if completed == 0:
        for key in list(summary):
            if key.endswith("_ms"):
                summary[key] = None
    if provenance is not None:
        summary["provenance"] = dict(provenance)
    return summary


SWEEP_STARTED = "2025-01-01T00:00:00+00:00"
SWEEP_FINISHED = "2025-01-01T00:10:00+00:00"

# `host.gpu` as `provenance.collect_gpu` records one GPU
SYNTHETIC_GPU: dict[str, Any] = {
    "count": 1,
    "devices": [
        {
            "name": "NVIDIA H100 80GB HBM3",
            "driver_version": "550.54.15",
            "memory_total": "81559 MiB",
        }
    ],
    "driver_version": "550.54.15",
    "cuda_version": "12.4",
}


def synthetic_host(gpu: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A `host` record shaped like `provenance.collect_host`'s (a CPU-only host by default)."""
    return {
        "hostname": "bench-host",
        "os": "Linux",
        "os_release": "Ubuntu 24.04 LTS",
        "kernel": "6.8.0-45-generic",
        "arch": "x86_64",
        "python": "3.11.9",
        "cpu": {
            "model": "Example CPU",
            "flags": ["avx2", "avx512f"],
            "logical_cores": 32,
            "physical_cores": 16,
            "usable_cores": 16,
        },
        "memory_bytes": 64 * 2**30,
        "cgroup_memory_limit_bytes": None,
        "gpu": None if gpu is None else dict(gpu),
    }


def synthetic_provenance(
    engine: str,
    model: str,
    quant: str,
    sweep: str | None = "default",
    *,
    started: str = SWEEP_STARTED,
    finished: str = SWEEP_FINISHED,
    gpu: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's provenance (keys as `provenance.run_provenance` writes them, plus
    `model_path`; no `packages`): what `server.json` holds and, with one point's own
    `started`/`finished`, what the sweep stamps on that point's summary."""
    return {
        "engine": engine,
        "engine_version": "1.2.3",
        "engine_commit": "0123456789abcdef0123456789abcdef01234567",
        "server_argv": [f"{engine}-server", "--model", f"/models/{model}", "--port", "8000"],
        "model": model,
        "model_source": f"hf:example/{model}@main",
        "model_sha": "f" * 64,
        "model_file_sha256": "e" * 64,
        "quant": quant,
        "sweep": sweep,
        "workload": "random-128-64",
        "seed": 0,
        "started": started,
        "finished": finished,
        "enginebench_version": "0.1.0",
        "enginebench_commit": "a" * 40,
        "enginebench_dirty": False,
        "snakemake_version": "9.0.0",
        "host": synthetic_host(gpu),
        "env": {"OMP_NUM_THREADS": "2"},
        "model_path": f"/models/{model}",
    }


def synthetic_server(engine: str, model: str, quant: str) -> dict[str, Any]:
    """A `server.json` record (keys as `provenance.run_provenance` writes them; the sweep is
    left unnamed: callers set `sweep`)."""
    return synthetic_provenance(engine, model, quant, sweep=None) | {"packages": None}


def _point_times(index: int, seconds: float) -> tuple[str, str]:
    """ISO start and end of the `index`-th point of a synthetic sweep (two minutes apart)."""
    start = datetime.fromisoformat(SWEEP_STARTED) + timedelta(seconds=30 + 120 * index)
    end = start + timedelta(seconds=round(min(seconds, 110.0)))
    return start.isoformat(timespec="seconds"), end.isoformat(timespec="seconds")


def write_synthetic_results(
    root: Path,
    engines: Sequence[str] = ("llamacpp", "vllm"),
    models: Sequence[str] = ("tiny",),
    quants: Sequence[str] = ("q8_0",),
    points: Sequence[str] = ("rate-1", "rate-2", "rate-4", "rate-inf"),
    sweep_name: str = "default",
) -> dict[tuple[str, str, str], list[Path]]:
    """The workflow's layout, `root/<engine>/<model>/<quant>/<sweep>/{server.json,
    points/<point>.json}`, for every combination (each summary with the `provenance` block the
    sweep stamps, its own start and end); returns (engine, model, quant) -> summary paths."""
    from enginebench.report.points import parse_point

    written: dict[tuple[str, str, str], list[Path]] = {}
    for e_idx, engine in enumerate(engines):
        for model in models:
            for quant in quants:
                run = Path(root) / engine / model / quant / sweep_name
                (run / "points").mkdir(parents=True, exist_ok=True)
                (run / "server.json").write_text(
                    json.dumps(synthetic_server(engine, model, quant) | {"sweep": sweep_name})
                )
                paths = []
                for p_idx, label in enumerate(points):
                    point = parse_point(label)
                    assert point is not None, label
                    summary = synthetic_summary(
                        point, capacity=6.0 + 3.0 * e_idx, engine=engine, model=model
                    )
                    started, finished = _point_times(p_idx, summary["duration"])
                    summary["provenance"] = synthetic_provenance(
                        engine, model, quant, sweep_name, started=started, finished=finished
                    )
                    path = run / "points" / f"{label}.json"
                    path.write_text(json.dumps(summary, indent=1))
                    paths.append(path)
                written[(engine, model, quant)] = paths
    return written
