"""Per-engine tables (one per engine x model x quant x sweep), the cross-engine comparison and
the capacity table, all rendered from the tidy results table (enginebench.report.tidy).

Each table is written three ways: CSV (full precision, display headers), Markdown, and a
self-contained HTML page (Snakemake's report shows HTML inline).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from enginebench.metric_registry import CI_SUFFIX, Column
from enginebench.points import MODES, Mode, format_load, point_name
from enginebench.report.columns import (
    CAPACITY,
    CONC_HEADER,
    MIXED_HEADER,
    RATE_HEADER,
    TRACE_HEADER,
    comparison_columns,
    engine_columns,
    engine_csv_columns,
    present,
)
from enginebench.report.render import Table, write_all
from enginebench.report.tidy import load_runs, mean_over_repeats, read_results
from enginebench.slo_search import p99s_within

PathLike = str | os.PathLike[str]

NOTES = (
    "TTFT: time from sending a request to its first streamed token. "
    "TPOT: (E2EL - TTFT) / (output tokens - 1), per request. Percentiles over requests.",
    "Throughputs are totals over the duration (start of scheduling to the last completion).",
    "failed requests: errors or HTTP failures; short outputs: completed with fewer tokens "
    "than asked (the output length is pinned).",
    "— : not measured (the sweep point is missing, was skipped past saturation, or no request "
    "completed).",
    "validity: ok (a steady-state measurement) or the flags raised: saturated (open loop: "
    "completed / (duration - unloaded latency: the shortest decode time of the first quarter "
    "+ the shortest TTFT) under 95% of the offered rate, shown as achieved / "
    "offered; or TTFT or client queue growing through the run: Mann-Kendall p < 0.01 and the "
    "last quarter's median over twice the first's), too_short (duration under the minimum), "
    "failed_requests, unrequested_cache_hits, interrupted, server_count_mismatch (the server's "
    "own token counters disagree with ours), stalled (the server sent nothing for the stall "
    "limit with requests in flight: the point was stopped, those requests failed), late_sends "
    "(open loop: the load generator's P99 dispatch lag over 100 ms, a starved client: the "
    "offered load was not the one asked for), disturbed (the machine was busy: processes "
    "other than the server's and the load generator's, steal included, used over 10% of the "
    "host's CPUs during the point, or others over 10% of its GPUs' SM). Marked rows; hollow "
    "markers in plots.",
    "Each point is sent prompts no earlier point (nor the warm-up) sent to that server. "
    "shared prefix: leading tokens every prompt shares on purpose (workload prefix_len). "
    "cached prompt tokens (engine): prompt tokens the engine reports it served from its cache "
    "(llama.cpp timings.cache_n; vLLM/SGLang usage.prompt_tokens_details.cached_tokens; MLC: "
    "prompt tokens minus usage.extra.prefill_tokens; blank: not reported); unrequested cache "
    "hits: requests with more cached tokens than the shared "
    "prefix (marked rows). Prefix groups (workload prefix_groups): expected cached prompt "
    "tokens (fraction): what an ideal prefix cache would serve, a request's group prefix once an "
    "earlier request to that server sent it (client side); expected prefix served from cache "
    "(engine): the share of those the engine reports it served, per request at most the "
    "expected (1 minus it: the prefix it recomputed).",
    "server: the engine's own Prometheus metrics over the point (vLLM /metrics, llama-server "
    "--metrics): the change of its prompt, cached and generated token counters and preemptions, "
    "its prefix-cache hit rate (cached over looked-up prompt tokens), and the highest KV-cache "
    "use, running and waiting requests it reported during the point (blank: no endpoint).",
    "engine P50 TPOT: the engine's own per-token decode time (llama.cpp "
    "timings.predicted_per_token_ms; MLC 1 / usage.extra.decode_tokens_per_s; TabbyAPI "
    "1 / usage.completion_tokens_per_sec); TTFT (TPOT) "
    "beyond the engine's: median of client TTFT "
    "(TPOT) minus the engine's prompt (per-token) time, per request: the client, HTTP and "
    "whatever the server does outside its own timed work (front end, queueing, a prompt-cache "
    "save).",
    "repeats: measured repetitions of the point (sweep `repeats`, interleaved, fresh prompts "
    "each); with more than one, each value is their mean ± the half-width of its 95% "
    "confidence interval (Student's t), and validity counts the repeats that raised each flag.",
)


# -- per-engine table -------------------------------------------------------------------------


def load_header(modes: Sequence[str]) -> str:
    kinds = set(modes)
    if kinds == {"concurrency"}:
        return CONC_HEADER
    if kinds == {"trace"}:
        return TRACE_HEADER
    return MIXED_HEADER if kinds - {"rate"} else RATE_HEADER


def _load_label(mode: Mode, load: float, mixed: bool) -> str:
    if mode != "rate" and mixed:
        return point_name(mode, load)  # conc-4, trace-2
    return format_load(load)


def with_load_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """`load_label`: the value shown in the offered-load column (`1`, `0.5`, `inf`; `4` for
    concurrency; `conc-4` in a table of both modes)."""
    mixed = load_header(list(frame["mode"])) == MIXED_HEADER
    labels = [_load_label(m, x, mixed) for m, x in zip(frame["mode"], frame["load"], strict=True)]
    return frame.assign(load_label=labels)


def engine_frame(
    summary_paths: Sequence[PathLike], server_json: PathLike | None = None
) -> pd.DataFrame:
    """The tidy rows of one sweep (`tidy.load_runs`), repeats folded into their mean
    (`tidy.mean_over_repeats`), with `load_label`."""
    paths = [p for p in summary_paths if Path(p).name != "server.json"]
    return with_load_labels(mean_over_repeats(load_runs([(paths, server_json)])))


def _with_ci(columns: Sequence[Column], frame: pd.DataFrame) -> list[Column]:
    """`columns`, each followed by its confidence-interval column where the frame has one."""
    out = []
    for c in columns:
        out.append(c)
        if c.key + CI_SUFFIX in frame:
            out.append(Column(f"{c.header} ±95% CI", c.key + CI_SUFFIX, c.kind))
    return out


def row_classes(frame: pd.DataFrame) -> list[str]:
    """`missing` for rows without latencies, `warn` for rows that are not a steady-state
    measurement or had failures, short outputs or cache hits the workload did not ask for."""
    classes = []
    for row in frame.to_dict("records"):
        cls = []
        if _blank(row.get("num_prompts")) or _blank(row.get("p50_ttft_ms")):
            cls.append("missing")
        flagged = ("failed", "short_outputs", "requests_with_unrequested_cache_hits")
        if any(_count(row.get(k)) > 0 for k in flagged) or not valid(row.get("validity")):
            cls.append("warn")
        classes.append(" ".join(cls))
    return classes


def valid(validity: Any) -> bool:
    """A row is valid unless its `validity` names flags ("ok", or unknown: blank)."""
    return _blank(validity) or str(validity) in ("", "ok")


def _count(value: Any) -> float:
    return 0.0 if _blank(value) else float(value)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _title(frame: pd.DataFrame) -> str:
    first = frame.iloc[0] if len(frame) else {}
    keys = ("engine", "model", "quant", "sweep")
    parts = [str(first.get(k) or "?") for k in keys] if len(frame) else []
    return " · ".join(parts) if parts else "engine table"


def write_engine_table(
    summary_paths: Sequence[PathLike],
    server_json: PathLike | None,
    out_csv: PathLike,
    out_md: PathLike,
    out_html: PathLike,
) -> pd.DataFrame:
    """The table of one engine x model x quant x sweep from its sweep-point summaries
    (`rate-<r>.json`, `conc-<n>.json`; a missing file gives a blank row) and its `server.json`.
    The CSV also carries the rest of each point's provenance (columns.DETAILS: argv, env,
    host, versions, start and end); the Markdown and HTML keep the compact columns.
    Returns the loaded frame."""
    frame = engine_frame(summary_paths, server_json)
    header = load_header(list(frame["mode"]))
    write_all(
        frame, present(engine_columns(header), frame), _title(frame), Path(out_csv),
        Path(out_md), Path(out_html), row_classes(frame), NOTES,
        csv_columns=_with_ci(present(engine_csv_columns(header), frame), frame),
    )  # fmt: skip
    return frame


# -- cross-engine comparison ------------------------------------------------------------------


def comparison_frame(results: PathLike) -> pd.DataFrame:
    """Every point of the tidy results table (repeats folded into their mean), sorted by
    model, then offered load (open loop before closed loop, `inf` last), then engine, quant
    and sweep: the same load lines up across engines."""
    frame = mean_over_repeats(read_results(results))
    if frame.empty:
        keys = ["point", "mode", "load", *(c.key for c in comparison_columns())]
        return pd.DataFrame(columns=list(dict.fromkeys(keys)))
    frame["rate"] = [
        x if m == "rate" else math.nan for m, x in zip(frame["mode"], frame["load"], strict=True)
    ]
    frame["concurrency"] = [
        x if m == "concurrency" else math.nan
        for m, x in zip(frame["mode"], frame["load"], strict=True)
    ]
    frame["replay"] = [
        x if m == "trace" else math.nan for m, x in zip(frame["mode"], frame["load"], strict=True)
    ]
    frame["_mode"] = [MODES.index(m) for m in frame["mode"]]
    for key in ("model", "engine", "quant", "sweep"):
        if key not in frame:  # a table written before the column existed (no sweep column)
            frame[key] = None
        frame[key] = frame[key].fillna("").astype(str)
    order = ["model", "_mode", "load", "engine", "quant", "sweep"]
    frame = frame.sort_values(order, kind="stable")
    return frame.drop(columns="_mode").reset_index(drop=True)


SloMap = Mapping[str, Mapping[str, float] | None]


def capacity_frame(results: PathLike, slo: SloMap | None = None) -> pd.DataFrame:
    """The capacity table of the tidy results table (`capacity_of`)."""
    return capacity_of(comparison_frame(results), slo)


def capacity_of(frame: pd.DataFrame, slo: SloMap | None = None) -> pd.DataFrame:
    """From the comparison's points (`comparison_frame`), per engine x model x quant x
    sweep: the highest offered rate whose point is not saturated (its validity), with its
    output throughput and P99 latencies, and the lowest rate that was. A rate above a
    saturated one that reads as steady does not count: capacity is the top of the steady run
    from the lowest rate up. `inf` points are bursts, left out. With an SLO for the sweep
    (`slo`: sweep name -> {ttft_ms, tpot_ms}), also the highest of those steady rates whose
    P99 TTFT and TPOT are within it, and the goodput there."""
    if frame.empty:
        return pd.DataFrame(columns=[c.key for c in CAPACITY])
    rows = []
    rates = frame[(frame["mode"] == "rate") & frame["load"].map(math.isfinite)]
    for key, points in rates.groupby(["model", "engine", "quant", "sweep"], sort=True):
        target = dict((slo or {}).get(str(key[3])) or {})
        steady: list[dict[str, Any]] = []
        first_saturated = math.nan
        for point in points.sort_values("load").to_dict("records"):
            flags = str(point.get("validity") or "")
            if "disturbed" in flags:  # the machine's doing, not the engine's: neither way
                continue
            if "saturated" in flags:
                first_saturated = point["load"]
                break
            if not _blank(point.get("validity")):
                steady.append(point)
        within = [p for p in steady if target and p99s_within(p, target)]
        top = steady[-1] if steady else {}
        best = within[-1] if within else {}
        row = dict(zip(("model", "engine", "quant", "sweep"), key, strict=True))
        row |= {
            "capacity": top.get("load", math.nan),
            "output_throughput": top.get("output_throughput", math.nan),
            "p99_ttft_ms": top.get("p99_ttft_ms", math.nan),
            "p99_tpot_ms": top.get("p99_tpot_ms", math.nan),
            "first_saturated": first_saturated,
            "slo": ", ".join(f"P99 {m[:-3].upper()} <= {v:g} ms" for m, v in target.items())
            or None,
            "slo_capacity": best.get("load", math.nan),
            "request_goodput": best.get("request_goodput", math.nan),
            "output_goodput": best.get("output_goodput", math.nan),
            "rates": ", ".join(format_load(x) for x in sorted(points["load"])),
        }
        rows.append(row)
    return pd.DataFrame(rows, columns=[c.key for c in CAPACITY])


CAPACITY_NOTES = (
    "capacity: the highest offered rate (req/s) measured as steady state, going up from "
    "the lowest rate until the first saturated point (validity: achieved / offered under "
    "0.95, or TTFT or queue growing through the run); — : no steady rate measured. A "
    "disturbed point (the machine was busy with something else) is left out: it says "
    "nothing of the engine either way.",
    "A capacity equal to the highest rate measured is a lower bound: add higher rates.",
    "SLO capacity: the highest of those rates whose P99 TTFT and TPOT are within the "
    "sweep's `slo`; goodput there: requests (and their output tokens) per second that met "
    "every SLO, per request (vllm bench serve's goodput).",
)


def write_capacity(
    results: PathLike,
    out_csv: PathLike,
    out_md: PathLike,
    out_html: PathLike,
    slo: SloMap | None = None,
) -> pd.DataFrame:
    """The capacity table (`capacity_frame`) as CSV, Markdown and HTML."""
    frame = capacity_frame(results, slo)
    write_all(
        frame, CAPACITY, "Capacity", Path(out_csv), Path(out_md), Path(out_html),
        [""] * len(frame), CAPACITY_NOTES,
    )  # fmt: skip
    return frame


def _group_classes(frame: pd.DataFrame) -> list[str]:
    """`group-start` on the first row of each model x load group, plus the row's own classes."""
    keys = list(zip(frame["model"], frame["mode"], frame["load"], strict=True))
    own = row_classes(frame)
    return [
        " ".join(filter(None, ["group-start" if i and keys[i] != keys[i - 1] else "", own[i]]))
        for i in range(len(frame))
    ]


def write_comparison(
    results: PathLike,
    out_csv: PathLike,
    out_md: PathLike,
    out_html: PathLike,
    slo: SloMap | None = None,
    instances: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The cross-engine comparison: one row per engine x model x quant x sweep point with the
    comparison view's metrics, from the tidy results table. Its HTML page shows the capacity
    table first (the answer most readers look for), then, where one engine runs as several
    instances, what sets each apart (`instances`: name -> differing options), then the points
    with the validity legend. Returns its frame."""
    frame = comparison_frame(results)
    every = present(comparison_columns(), frame)
    # Markdown/HTML leave out an offered-load column that no row uses; the CSV keeps both
    loads = ("rate", "concurrency", "replay")
    shown = [c for c in every if c.key not in loads or frame[c.key].notna().any()]
    capacity = capacity_of(frame, slo)  # the same points, read once
    before = [Table(capacity, CAPACITY, "Capacity", None, CAPACITY_NOTES)]
    if instances:
        legend = pd.DataFrame(
            [{"engine": name, "differs": text} for name, text in sorted(instances.items())]
        )
        columns = [Column("engine", "engine", "text"), Column("what differs", "differs", "text")]
        before.append(Table(legend, columns, "Instances of one engine"))
    write_all(
        frame, shown, "Cross-engine comparison", Path(out_csv), Path(out_md), Path(out_html),
        _group_classes(frame), NOTES, csv_columns=_with_ci(every, frame), html_before=before,
    )  # fmt: skip
    return frame
