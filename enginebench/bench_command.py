"""The load generator's command line (`enginebench bench`) for one point of a served sweep, or
for its warm-up: the exact argv the sweep runs and records."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from enginebench.points import SweepPoint, format_load
from enginebench.runspec import RunSpec


def _meta_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def exact_length_flags(style: str) -> list[str]:
    """`enginebench bench` flags that pin each request's output length, per engine dialect."""
    if style == "none":
        return []
    if style == "debug_config":  # MLC: only with the server's --enable-debug
        return ["--extra-body", json.dumps({"debug_config": {"ignore_eos": True}})]
    return ["--ignore-eos", "--ignore-eos-style", style]


def materialize_argv(workload: Mapping[str, Any], tokenizer: str, rows: int, out: str) -> list[str]:
    """The `enginebench bench --save-prompts` flags of a config workload's prompt file."""
    w = workload
    argv = [
        "--dataset-name", w["dataset"],
        "--tokenizer", str(tokenizer),
        "--num-prompts", str(rows),
        "--random-input-len", str(w["input_len"]),
        "--random-output-len", str(w["output_len"]),
        "--fixed-output-len", str(w["output_len"]),
        "--seed", str(w["seed"]),
        "--save-prompts", str(out),
    ]  # fmt: skip
    if w["prefix_len"]:
        argv += ["--random-prefix-len", str(w["prefix_len"])]
        argv += ["--random-prefix-groups", str(w["prefix_groups"])]
        argv += ["--random-prefix-order", w["prefix_order"]]
    if w.get("turns"):
        argv += ["--session-turns", str(w["turns"])]
    if w.get("dataset_path"):
        argv += ["--dataset-path", w["dataset_path"]]
    return argv


# a trace workload's keys (config) -> `enginebench bench` flags; the flags' defaults stand for a
# key left out
TRACE_FLAGS = {
    "format": "--trace-format",
    "start_s": "--trace-start",
    "duration_s": "--trace-duration",
    "input_scale": "--trace-input-scale",
    "output_scale": "--trace-output-scale",
    "block_len": "--trace-block-len",
}


def trace_flags(trace: Mapping[str, Any], copy: int) -> list[str]:
    """The dataset flags of a trace's replay, drawn as its `copy`-th copy."""
    argv = ["--dataset-name", "trace", "--dataset-path", str(trace["path"])]
    for key, flag in TRACE_FLAGS.items():
        if trace.get(key) is not None:
            argv += [flag, f"{trace[key]:g}" if isinstance(trace[key], float) else str(trace[key])]
    return [*argv, "--trace-copy", str(copy)]


def bench_argv(
    cfg: RunSpec,
    base_url: str,
    served: str,
    style: str,
    model_check: bool,
    point: SweepPoint | None,
    warmup_n: int = 0,
    first_row: int = 0,
    provenance_file: str | None = None,
    metrics_path: str | None = None,
    copy: int = 0,
    server_pid: int | None = None,
    reference_records: Sequence[str] = (),
) -> list[str]:
    """The exact `enginebench bench` command of one point (or of the warm-up: point None), sent
    the prompt file's rows from `first_row` on (`prompt_rows`); its summary carries the point
    and the sweep's provenance (`provenance_file`), written by the load generator alone, and
    the server's own metrics (`metrics_path`: its Prometheus endpoint, scraped around it). A
    trace's replay draws its prompts from the trace as its `copy`-th copy instead. The
    server's process (`server_pid`) tells its CPU time from others' (host interference); the
    earlier points' records (`reference_records`) give the early stop the server's pace."""
    argv = [
        sys.executable,
        "-m",
        "enginebench",
        "bench",
        "--base-url",
        base_url,
        "--endpoint",
        cfg.endpoint,
        "--model",
        served,
        *(trace_flags(cfg.trace, copy) if cfg.trace else ["--prompts-file", cfg.prompts_file]),
        "--seed",
        str(cfg.seed),
        "--disable-tqdm",
    ]
    if cfg.tokenizer:
        argv += ["--tokenizer", cfg.tokenizer]
    argv += exact_length_flags(style)
    if not model_check:
        argv.append("--no-model-check")
    if cfg.api_key_env:
        argv += ["--api-key-env", cfg.api_key_env]
    if first_row and not cfg.trace:
        argv += ["--prompt-offset", str(first_row)]
    if point is None:  # warm-up: all at once, nothing saved
        return [*argv, "--num-prompts", str(warmup_n), "--concurrency", str(min(warmup_n, 4))]
    if point.mode == "trace":  # the window's requests, at the trace's times
        argv += ["--trace-speedup", format_load(point.load)]
    else:
        argv += ["--num-prompts", str(point.num_prompts)]
    if point.mode == "rate" and cfg.ramp:  # rising to the point's rate
        argv += ["--ramp-up-strategy", cfg.ramp["strategy"]]
        argv += ["--ramp-up-start-rps", f"{cfg.ramp['start_rps']:g}"]
        argv += ["--ramp-up-end-rps", format_load(point.load)]
        argv += ["--burstiness", f"{point.burstiness:g}"]
    elif point.mode == "rate":
        argv += ["--request-rate", format_load(point.load), "--burstiness", f"{point.burstiness:g}"]
        if point.max_concurrency:
            argv += ["--max-concurrency", str(point.max_concurrency)]
    elif point.mode == "concurrency":
        argv += ["--concurrency", str(int(point.load))]
        if point.duration:
            argv += ["--duration", f"{point.duration:g}"]
    meta = {"engine": cfg.engine, "quant": cfg.quant}
    meta |= cfg.metadata
    if cfg.sweep:
        meta["sweep"] = cfg.sweep
    argv += [
        "--save-result",
        "--result-dir",
        cfg.out_dir,
        "--result-filename",
        f"{point.name}.json",
        "--point",
        point.name,
        *(["--provenance-file", provenance_file] if provenance_file else []),
        *(["--server-metrics", metrics_path] if metrics_path else []),
        *(["--server-pid", str(server_pid)] if server_pid else []),
        *(flag for path in reference_records for flag in ("--reference-records", path)),
    ]
    argv += ["--metadata", *(f"{k}={_meta_value(v)}" for k, v in meta.items())]
    return [*argv, *cfg.bench_args]
