"""Synthetic sweep results (summaries shaped like `enginebench bench`'s, and `server.json`).

For the report's tests and for previewing the report without running an engine. The numbers
follow a toy queueing shape (latency grows as the offered rate nears capacity); they are
not measurements of anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
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
) -> dict[str, Any]:
    """A summary for one sweep point of an engine serving `capacity` req/s at most."""
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
    return summary


def synthetic_server(engine: str, model: str, quant: str) -> dict[str, Any]:
    """A `server.json` record (keys as `provenance.run_provenance` writes them)."""
    return {
        "engine": engine,
        "engine_version": "1.2.3",
        "engine_commit": "0123456789abcdef0123456789abcdef01234567",
        "server_argv": [f"{engine}-server", "--model", f"/models/{model}", "--port", "8000"],
        "model": model,
        "model_source": f"hf:example/{model}@main",
        "model_sha": "f" * 64,
        "quant": quant,
        "workload": "random-128-64",
        "seed": 0,
        "started": "2025-01-01T00:00:00+00:00",
        "finished": "2025-01-01T00:10:00+00:00",
        "enginebench_version": "0.1.0",
        "enginebench_commit": "a" * 40,
        "enginebench_dirty": False,
        "snakemake_version": "9.0.0",
        "host": {"hostname": "bench-host", "cpu": {"model": "Example CPU"}, "gpu": None},
        "env": {"OMP_NUM_THREADS": "2"},
        "packages": None,
    }


def write_synthetic_results(
    root: Path,
    engines: Sequence[str] = ("llamacpp", "vllm"),
    models: Sequence[str] = ("tiny",),
    quants: Sequence[str] = ("q8_0",),
    points: Sequence[str] = ("rate-1", "rate-2", "rate-4", "rate-inf"),
    sweep_name: str = "default",
) -> dict[tuple[str, str, str], list[Path]]:
    """The workflow's layout, `root/<engine>/<model>/<quant>/<sweep>/{server.json,
    points/<point>.json}`, for every combination; returns (engine, model, quant) -> summary
    paths."""
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
                for label in points:
                    point = parse_point(label)
                    assert point is not None, label
                    summary = synthetic_summary(
                        point, capacity=6.0 + 3.0 * e_idx, engine=engine, model=model
                    )
                    path = run / "points" / f"{label}.json"
                    path.write_text(json.dumps(summary, indent=1))
                    paths.append(path)
                written[(engine, model, quant)] = paths
    return written
