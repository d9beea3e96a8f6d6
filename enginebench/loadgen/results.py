"""Result files of one sweep point (summary JSON + per-request JSONL) and the printed table."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from enginebench import __version__
from enginebench.jsonfile import write_text
from enginebench.loadgen.client import Endpoint, RequestRecord
from enginebench.loadgen.metrics import percentile_key, summarize
from enginebench.metric_registry import Metric, in_view


def result_paths(
    result_dir: str | None,
    result_filename: str | None,
    backend: str,
    request_rate: float,
    max_concurrency: int | None,
    model_id: str,
    date: str,
) -> tuple[Path, Path]:
    """(summary JSON, per-request JSONL); the default name is vLLM's."""
    if result_filename:
        name = result_filename
    else:
        conc = f"-concurrency{max_concurrency}" if max_concurrency is not None else ""
        rate = "inf" if math.isinf(request_rate) else f"{request_rate}"
        name = f"{backend}-{rate}qps{conc}-{model_id.rstrip('/').split('/')[-1]}-{date}.json"
    path = Path(result_dir or ".") / name
    stem = path.name[: -len(".json")] if path.name.endswith(".json") else path.name
    return path, path.with_name(stem + ".jsonl")


def build_summary(
    args: argparse.Namespace,
    argv: list[str],
    ep: Endpoint,
    have_tokenizer: bool,
    records: Sequence[RequestRecord],
    duration_s: float,
) -> dict[str, Any]:
    """The summary JSON: vLLM's keys (same order), then ours, then the run's settings."""
    summary: dict[str, Any] = {
        "date": now_stamp(),
        "backend": "openai-chat" if ep.chat else "openai",
        "model_id": ep.model,
        "tokenizer_id": args.tokenizer or (args.model if have_tokenizer else None),
        "num_prompts": args.num_prompts,
        "request_rate": "inf" if math.isinf(args.request_rate) else args.request_rate,
        "burstiness": args.burstiness,
        "max_concurrency": args.max_concurrency,
    }
    summary.update(
        summarize(
            records,
            duration_s,
            args.metric_percentiles,
            args.percentile_metrics,
            args.goodput or None,
            ignore_eos=args.ignore_eos,
            stream=ep.stream,
        )
    )
    summary.update(
        {
            "concurrency": args.concurrency,
            "endpoint": args.endpoint,
            "stream": ep.stream,
            "ignore_eos": ep.ignore_eos,
            "ignore_eos_style": ep.ignore_eos_style if ep.ignore_eos else None,
            "dataset_name": None if args.prompts_file else args.dataset_name,
            "prompts_file": args.prompts_file,
            "seed": args.seed,
            "num_warmups": args.num_warmups,
            "duration_limit_s": args.duration,
            "goodput_slo_ms": args.goodput or None,
            "metadata": args.metadata,
            "argv": argv,
            "enginebench_version": __version__,
        }
    )
    return summary


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def now_stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write null (and the rate's inf as vLLM's string 'inf')."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_results(
    summary: dict[str, Any], records: Sequence[RequestRecord], json_path: Path, jsonl_path: Path
) -> None:
    rows = "".join(json.dumps(_clean(r.to_row())) + "\n" for r in records)
    write_text(jsonl_path, rows)
    try:
        write_text(json_path, json.dumps(_clean(summary), indent=2) + "\n")
    except OSError:  # no summary: no records either (a point is its summary and its records)
        jsonl_path.unlink(missing_ok=True)
        raise


_HEADERS = {
    "ttft": ("TTFT", "Time to First Token"),
    "ttft_content": ("TTFT content", "Time to First Content Token"),
    "tpot": ("TPOT", "Time per Output Token (excl. 1st token)"),
    "itl": ("ITL", "Inter-token Latency"),
    "e2el": ("E2EL", "End-to-end Latency"),
    "client_queue_time": ("Client Queue Time", "Client-side Queueing"),
}


def _cli_label(m: Metric) -> str:
    """`Request throughput (req/s):` from the registry's `request throughput`, `req/s`."""
    return f"{m.header[0].upper()}{m.header[1:]}:"


def _cli_format(m: Metric) -> str:
    return "{:<10.3f}" if m.kind in ("ratio", "req") else "{:<10.2f}"


def format_table(
    summary: dict[str, Any], metrics: Sequence[str], percentiles: Sequence[float]
) -> str:
    """A short human-readable summary in the shape vllm bench serve prints."""
    lines = ["{:=^60}".format(" Serving Benchmark Result ")]

    def row(label: str, value: Any, fmt: str = "{:<10.2f}") -> None:
        if value is None:
            return
        text = fmt.format(value) if isinstance(value, float) else str(value)
        lines.append(f"{label:<44} {text}")

    if summary.get("max_concurrency") is not None:
        row("Maximum request concurrency:", summary["max_concurrency"])
    if summary.get("concurrency") is not None:
        row("Closed-loop users:", summary["concurrency"])
    if summary.get("request_rate") not in (None, "inf"):
        row("Request rate configured (RPS):", float(summary["request_rate"]))
    for m in in_view("cli"):  # the registry's order: vllm bench serve's where it prints them
        row(_cli_label(m), summary.get(m.key), _cli_format(m))
    if lag := summary.get("dispatch_lag_ms"):
        row(
            "Dispatch lag p50/p99/max (ms):",
            f"{lag['p50']:.3f} / {lag['p99']:.3f} / {lag['max']:.3f}",
        )
    if "validity" in summary:
        row("Validity:", ", ".join(summary["validity"]) or "steady state")
    if summary.get("errors_by_kind"):
        row("Errors by kind:", ", ".join(f"{k}={v}" for k, v in summary["errors_by_kind"].items()))
    for name in dict.fromkeys([*metrics, "ttft_content"]):
        if summary.get(f"mean_{name}_ms") is None:
            continue  # not measured (TPOT, ITL without streaming)
        short, header = _HEADERS[name]
        lines.append(f"{header:-^60}")
        row(f"Mean {short} (ms):", summary[f"mean_{name}_ms"])
        row(f"Median {short} (ms):", summary[f"median_{name}_ms"])
        for p in percentiles:
            key = percentile_key(p)
            row(f"P{key[1:]} {short} (ms):", summary[f"{key}_{name}_ms"])
    if summary.get("engine_account"):
        lines.append("{:-^60}".format("Engine's own account"))
        row("Source:", ", ".join(summary["engine_account"]))
        for m in in_view("cli_engine"):
            row(_cli_label(m), summary.get(m.key), _cli_format(m))
    if summary.get("turns"):
        lines.append("{:-^60}".format("By turn: P50 TTFT, prompt, history served"))
        for t in summary["turns"]:
            served = t["expected_prefix_served_fraction"]
            row(
                f"Turn {t['turn']} ({t['requests']} requests):",
                f"{_ms(t['p50_ttft_ms'])} ms, {t['mean_prompt_tokens'] or 0:.0f} tokens, "
                + ("-" if served is None else f"{served:.1%}"),
            )
    if summary.get("gpu_count"):
        lines.append("{:-^60}".format("GPU telemetry"))
        for m in in_view("cli_gpu"):
            row(_cli_label(m), summary.get(m.key), _cli_format(m))
    lines.append("=" * 60)
    return "\n".join(lines)
