"""The single-stream decode table (seed 000's shape: rows model x hardware, a column per engine,
tokens/s) with llama-bench beside llama.cpp, and the memory-bandwidth roofline of each result
(enginebench.roofline states the formula)."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from enginebench.jsonfile import read_json
from enginebench.metric_registry import Column
from enginebench.report.columns import present
from enginebench.report.render import Table, page_html, to_markdown, write_csv
from enginebench.report.tidy import read_results
from enginebench.roofline import (
    Bandwidth,
    chosen_bandwidth,
    kv_cache_bytes,
    kv_shape_from_config,
    roofline,
    weights_bytes,
)

PathLike = str | os.PathLike[str]
GB = 1e9
BOUND_BELOW = "bound below measurement: the bandwidth figure is wrong or the machine was busy"

DETAIL = [
    Column("model", "model", "text"),
    Column("hardware", "hardware", "text"),
    Column("engine", "engine", "text"),
    Column("quant", "quant", "text"),
    Column("engine version", "engine_version", "text"),
    Column("decode (tok/s)", "decode_tok_s", "tok"),
    Column("engine's own (tok/s)", "engine_decode_tok_s", "tok"),
    Column("llama-bench tg (tok/s)", "llama_bench_tok_s", "tok"),
    Column("llama-bench tg at the prompt's depth (tok/s)", "llama_bench_depth_tok_s", "tok"),
    Column("requests", "completed", "int"),
    Column("context (tokens)", "context_len", "sec"),
    Column("weights (GB)", "weight_gb", "ratio"),
    Column("KV cache read (MB)", "kv_mb", "ratio"),
    Column("bandwidth (GB/s)", "bandwidth_gb_s", "sec"),
    Column("bandwidth source", "bandwidth_source", "text"),
    Column("bound (tok/s)", "bound_tok_s", "tok"),
    Column("decode / bound (%)", "percent_of_bound", "sec"),
    Column("llama-bench / bound (%)", "llama_bench_percent_of_bound", "sec"),
    Column("roofline check", "roofline_check", "text"),
    # fidelity beside speed (results/fidelity.*), where the engine x quant has it
    Column("top-1 agreement", "top1_agreement", "ratio", optional=True),
    Column("KL mean (nats)", "kl_mean", "sci", optional=True),
]

NOTES = (
    "decode: 1000 / the median TPOT of single-stream requests (one user, the fixed long-story "
    "prompt, 128 output tokens, EOS ignored), client-side as vllm bench serve measures it; "
    "engine's own: 1000 / the engine's median per-token decode time (llama.cpp timings, MLC's "
    "usage.extra, TabbyAPI's usage.completion_tokens_per_sec; blank: the engine reports none).",
    "llama-bench: the same build and GGUF, tg (generation only, no server, no HTTP), the mean "
    "of its repetitions; at the prompt's depth: with the prompt's tokens in the KV cache first.",
    "bound = bandwidth / bytes per token; bytes per token = weights (the GGUF file, the HF "
    "weight files or MLC's converted shards the server loads) + KV cache read = 2 x layers x "
    "KV heads x head dim x "
    "context x bytes per element (2: f16; 4 where the server runs float32 or an MLC "
    "quantization computes in it, q4f32_1), at context = "
    "prompt tokens + half the output (the mean over the decode). Dense weights and full "
    "attention assumed.",
    "bandwidth source: datasheet (GPU, by its nvidia-smi name), config (roofline.bandwidth_gb_s), "
    "or measured (CPU: a numpy copy larger than the last-level cache, read + write counted, "
    "the best of its runs, before and after the sweeps: the higher of the two).",
    f"roofline check: ok, or '{BOUND_BELOW}' where a measured rate (decode or llama-bench) "
    "exceeds its bound (shown, not hidden: such a percentage is over 100).",
    "top-1 agreement, KL mean: the engine x quant's fidelity to the reference model "
    "(results/fidelity.*, where the definitions are).",
)


def _llama_bench(paths: Sequence[PathLike]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(engine, model, quant) -> the llama-bench record of the workflow's llama_bench rule."""
    out = {}
    for path in paths:
        record = json.loads(Path(path).read_text())
        out[(str(record["engine"]), str(record["model"]), str(record["quant"]))] = record
    return out


def _tg(record: Mapping[str, Any] | None, depth: int) -> float:
    for row in (record or {}).get("rows", []):
        if row["n_prompt"] == 0 and row["n_depth"] == depth:
            return float(row["tok_s"])
    return math.nan


# MLC-LLM's quantizations name their activation (and KV cache) type: q0f32, q4f32_1
_MLC_F32 = re.compile(r"q\d+f32(_\d+)?")


def _kv_bytes_per_elem(argv: Any, quant: str) -> int:
    """4 where the server was told float32 (`--dtype float32`) or an MLC quantization computes
    in it (q4f32_1), else f16's 2."""
    text = str(argv or "")
    return 4 if '"--dtype","float32"' in text.replace(" ", "") or _MLC_F32.fullmatch(quant) else 2


def decode_frame(
    results: PathLike,
    sweeps: Sequence[str],
    llama_bench: Sequence[PathLike],
    bandwidth: Mapping[str, Any],
    model_configs: Mapping[str, PathLike],
    uses_gpu: Mapping[str, bool],
    fidelity: Sequence[PathLike] = (),
) -> pd.DataFrame:
    """One row per engine x model x quant of the decode sweeps' single-stream point, with its
    fidelity (`fidelity`: score files) where it has one."""
    scores = {(s["engine"], s["model"], s["quant"]): s for s in map(read_json, fidelity)}
    tidy = read_results(results)
    points = tidy[
        tidy["sweep"].isin(list(sweeps)) & (tidy["mode"] == "concurrency") & (tidy["load"] == 1)
    ]
    benches = _llama_bench(llama_bench)
    rows = []
    for p in points.to_dict("records"):
        gpu = bool(uses_gpu.get(str(p["engine"]), False))
        hardware = (p.get("gpu") if gpu else p.get("cpu_model")) or "?"
        tpot, engine_tpot = p.get("p50_tpot_ms"), p.get("median_engine_decode_ms_per_token")
        row = {k: p.get(k) for k in ("model", "engine", "quant", "engine_version", "completed")}
        row |= {
            "hardware": hardware,
            "decode_tok_s": per_second(tpot),
            "engine_decode_tok_s": per_second(engine_tpot),
        }
        done = p.get("completed") or 0
        prompt = (p.get("total_input_tokens") or 0) / done if done else math.nan
        output = (p.get("total_output_tokens") or 0) / done if done else math.nan
        bench = benches.get((str(p["engine"]), str(p["model"]), str(p["quant"])))
        row["llama_bench_tok_s"] = _tg(bench, 0)
        row["llama_bench_depth_tok_s"] = _tg(bench, int(bench["depth"])) if bench else math.nan
        row["context_len"] = prompt + output / 2
        row |= _roofline(p, row, chosen_bandwidth(bandwidth, gpu), model_configs)
        score = scores.get((str(p["engine"]), str(p["model"]), str(p["quant"]))) or {}
        row |= {k: score.get(k, math.nan) for k in ("top1_agreement", "kl_mean")}
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c.key for c in DETAIL])
    return frame.sort_values(["model", "hardware", "engine", "quant"]).reset_index(drop=True)


def per_second(ms_per_token: Any) -> float:
    """Decode tokens/s from a median time per token; NaN where there is none, or it is 0 (every
    token of the median request came in one burst: no decode rate to speak of)."""
    ok = ms_per_token is not None and not pd.isna(ms_per_token) and float(ms_per_token) > 0
    return 1000.0 / float(ms_per_token) if ok else math.nan


def _roofline(
    point: Mapping[str, Any],
    row: Mapping[str, Any],
    bandwidth: Bandwidth | None,
    model_configs: Mapping[str, PathLike],
) -> dict[str, Any]:
    """Weights, KV read, the bound and the shares of it reached; blank where a size or the
    bandwidth is unknown."""
    blank = dict.fromkeys(
        ("weight_gb", "kv_mb", "bandwidth_gb_s", "bound_tok_s", "percent_of_bound",
         "llama_bench_percent_of_bound"), math.nan,
    ) | {"roofline_check": None}  # fmt: skip
    model_path = point.get("model_path")
    config = model_configs.get(str(point["model"]))
    if bandwidth is None or not model_path or not Path(model_path).exists():
        return blank | {"bandwidth_source": bandwidth.source if bandwidth else None}
    weights = weights_bytes(model_path)
    kv = math.nan  # without the model's config.json (a GGUF-only model): weights alone
    if config is not None and Path(config).is_file():
        shape = kv_shape_from_config(json.loads(Path(config).read_text()))
        per_elem = _kv_bytes_per_elem(point.get("server_argv"), str(point["quant"]))
        kv = kv_cache_bytes(*shape, row["context_len"], per_elem)
    line = roofline(weights, kv if math.isfinite(kv) else 0.0, bandwidth, row["decode_tok_s"])
    bench = row["llama_bench_tok_s"]
    reached = [x for x in (row["decode_tok_s"], bench) if math.isfinite(x)]
    return {
        "roofline_check": BOUND_BELOW if any(x > line.bound_tok_s for x in reached) else "ok",
        "weight_gb": weights / GB,
        "kv_mb": kv / 1e6,
        "bandwidth_gb_s": bandwidth.bytes_per_s / GB,
        "bandwidth_source": bandwidth.source,
        "bound_tok_s": line.bound_tok_s,
        "percent_of_bound": line.percent_of_bound,
        "llama_bench_percent_of_bound": bench / line.bound_tok_s * 100
        if math.isfinite(bench)
        else math.nan,
    }


def pivot(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Column]]:
    """Seed 000's shape: a row per model x hardware, a decode tok/s column per engine x quant,
    and a llama-bench column per llama.cpp quant."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    columns: dict[str, Column] = {}
    for r in frame.to_dict("records"):
        row = rows.setdefault(
            (r["model"], r["hardware"]), {"model": r["model"], "hardware": r["hardware"]}
        )
        key = f"{r['engine']} {r['quant']}"
        row[key] = r["decode_tok_s"]
        columns.setdefault(key, Column(f"{key} (tok/s)", key, "tok"))
        if math.isfinite(r["llama_bench_tok_s"]):
            bench = f"llama-bench {r['quant']}"
            row[bench] = r["llama_bench_tok_s"]
            columns.setdefault(bench, Column(f"{bench} (tok/s)", bench, "tok"))
    shown = [Column("model", "model", "text"), Column("hardware", "hardware", "text")]
    return pd.DataFrame(list(rows.values())), shown + sorted(columns.values(), key=lambda c: c.key)


def write_decode(
    frame: pd.DataFrame, out_csv: PathLike, out_md: PathLike, out_html: PathLike
) -> None:
    """CSV (one row per result, the roofline beside it), Markdown and HTML (the seed-000 pivot
    first, then the detail)."""
    wide, wide_columns = pivot(frame)
    for path in (out_csv, out_md, out_html):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    detail = present(DETAIL, frame)
    write_csv(frame, detail, Path(out_csv))
    title = "Single-stream decode and the memory-bandwidth roofline"
    Path(out_md).write_text(
        f"# {title}\n\n{to_markdown(wide, wide_columns)}\n{to_markdown(frame, detail, NOTES)}"
    )
    flagged = ["warn" if c == BOUND_BELOW else "" for c in frame["roofline_check"]]
    tables = [
        Table(wide, wide_columns, "Decode tokens/s, single stream"),
        Table(frame, detail, "Each result against its memory-bandwidth bound", flagged, NOTES),
    ]
    Path(out_html).write_text(page_html(title, tables))
