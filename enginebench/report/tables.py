"""Per-engine tables (one per engine x model x quant) and the cross-engine comparison.

Each table is written three ways: CSV (full precision; the input of the comparison and the
plots), Markdown, and a self-contained HTML page (Snakemake's report shows HTML inline).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from enginebench.report.columns import (
    CAPACITY,
    COMPARISON,
    CONC_HEADER,
    LOAD_HEADERS,
    MIXED_HEADER,
    RATE_HEADER,
    Column,
    engine_columns,
    engine_csv_columns,
)
from enginebench.report.load import load_points
from enginebench.report.points import SweepPoint, format_load, parse_point
from enginebench.report.render import write_all

PathLike = str | os.PathLike[str]

NOTES = (
    "TTFT: time from sending a request to its first streamed token. "
    "TPOT: (E2EL - TTFT) / (output tokens - 1), per request. Percentiles over requests.",
    "Throughputs are totals over the duration (start of scheduling to the last completion).",
    "failed requests: errors or HTTP failures; short outputs: completed with fewer tokens "
    "than asked (the output length is pinned).",
    "— : not measured (the sweep point is missing, or no request completed).",
    "validity: ok (a steady-state measurement) or the flags raised: saturated (open loop: "
    "completed / (duration - median E2EL) under 95% of the offered rate, shown as achieved / "
    "offered; or TTFT or client queue growing through the run: Mann-Kendall p < 0.01 and the "
    "last quarter's median over twice the first's), too_short (duration under the minimum), "
    "failed_requests, unrequested_cache_hits, interrupted. Marked rows; hollow markers in plots.",
    "Each point is sent prompts no earlier point (nor the warm-up) sent to that server. "
    "shared prefix: leading tokens every prompt shares on purpose (workload prefix_len). "
    "cached prompt tokens (engine): prompt tokens the engine reports it served from its cache "
    "(llama.cpp timings.cache_n; vLLM/SGLang usage.prompt_tokens_details.cached_tokens; blank: "
    "not reported); unrequested cache hits: requests with more cached tokens than the shared "
    "prefix (marked rows).",
    "engine P50 TPOT: the engine's own per-token decode time (llama.cpp "
    "timings.predicted_per_token_ms); harness overheads: median of client TPOT (TTFT) minus the "
    "engine's per-token (prompt) time, per request.",
)


# -- per-engine table -------------------------------------------------------------------------


def load_header(modes: Sequence[str]) -> str:
    kinds = set(modes)
    if kinds == {"concurrency"}:
        return CONC_HEADER
    return MIXED_HEADER if "concurrency" in kinds else RATE_HEADER


def _load_label(mode: str, load: float, mixed: bool) -> str:
    if mode == "concurrency" and mixed:
        return SweepPoint("concurrency", load).label  # conc-4
    return format_load(load)


def engine_frame(
    summary_paths: Sequence[PathLike], server_json: PathLike | None = None
) -> pd.DataFrame:
    """The loaded sweep points (see `load.load_points`) plus `load_label`, the value shown in
    the offered-load column (`1`, `0.5`, `inf`; `4` for concurrency; `conc-4` in mixed tables)."""
    paths = [Path(p) for p in summary_paths if Path(p).name != "server.json"]
    frame = load_points(paths, None if server_json is None else Path(server_json))
    mixed = load_header(list(frame["mode"])) == MIXED_HEADER
    frame["load_label"] = [
        _load_label(m, x, mixed) for m, x in zip(frame["mode"], frame["load"], strict=True)
    ]
    return frame


def row_classes(frame: pd.DataFrame) -> list[str]:
    """`missing` for rows without latencies, `warn` for rows with failures, short outputs or
    cache hits the workload did not ask for."""
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
        frame, engine_columns(header), _title(frame), Path(out_csv), Path(out_md),
        Path(out_html), row_classes(frame), NOTES, csv_columns=engine_csv_columns(header),
    )  # fmt: skip
    return frame


def _columns_by_header(headers: Sequence[str]) -> dict[str, Column]:
    """The known columns among `headers` (others, e.g. from a newer writer, are ignored)."""
    known = {c.header: c for c in engine_csv_columns(RATE_HEADER)[1:]}
    return {h: known[h] for h in headers if h in known}


def read_engine_table(path: PathLike) -> pd.DataFrame:
    """A per-engine table CSV back as a frame with the loaded keys (`point`, `mode`, `load`,
    `num_prompts`, `p50_ttft_ms`, `engine`, ..., `started`) of the columns it has."""
    table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    load_col = table.columns[0]
    if load_col not in LOAD_HEADERS:
        raise ValueError(f"{path}: first column {load_col!r} is not an offered-load column")
    points = [_parse_load(load_col, v) for v in table[load_col]]
    out = pd.DataFrame(
        {
            "point": [p.label for p in points],
            "mode": [p.mode for p in points],
            "load": [p.load for p in points],
        }
    )
    for header, col in _columns_by_header(list(table.columns[1:])).items():
        values = table[header]
        out[col.key] = pd.to_numeric(values) if col.numeric else values.astype(object)
    return out.astype({c.key: object for c in COMPARISON if c.key in out and not c.numeric})


def _parse_load(header: str, value: Any) -> SweepPoint:
    text = str(value).strip()
    named = parse_point(text)
    if named is not None:
        return named
    if header == CONC_HEADER:
        return SweepPoint("concurrency", float(text))
    return SweepPoint("rate", float(text))


# -- cross-engine comparison ------------------------------------------------------------------


def comparison_frame(table_csvs: Sequence[PathLike]) -> pd.DataFrame:
    """All per-engine tables stacked, sorted by model, then offered load (open loop before
    closed loop, `inf` last), then engine, quant and sweep: the same load lines up across
    engines."""
    frames = [read_engine_table(p) for p in table_csvs]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["point", "mode", "load", *(c.key for c in COMPARISON)])
    frame = pd.concat(frames, ignore_index=True)
    frame["rate"] = [
        x if m == "rate" else math.nan for m, x in zip(frame["mode"], frame["load"], strict=True)
    ]
    frame["concurrency"] = [
        x if m == "concurrency" else math.nan
        for m, x in zip(frame["mode"], frame["load"], strict=True)
    ]
    frame["_mode"] = [0 if m == "rate" else 1 for m in frame["mode"]]
    for key in ("model", "engine", "quant", "sweep"):
        if key not in frame:  # a table written before the column existed (no sweep column)
            frame[key] = None
        frame[key] = frame[key].fillna("").astype(str)
    order = ["model", "_mode", "load", "engine", "quant", "sweep"]
    frame = frame.sort_values(order, kind="stable")
    return frame.drop(columns="_mode").reset_index(drop=True)


SloMap = Mapping[str, Mapping[str, float] | None]


def capacity_frame(table_csvs: Sequence[PathLike], slo: SloMap | None = None) -> pd.DataFrame:
    """Per engine x model x quant x sweep: the highest offered rate whose point is not
    saturated (its validity), with its output throughput and P99 latencies, and the lowest
    rate that was. A rate above a saturated one that reads as steady does not count: capacity
    is the top of the steady run from the lowest rate up. `inf` points are bursts, left out.
    With an SLO for the sweep (`slo`: sweep name -> {ttft_ms, tpot_ms}), also the highest of
    those steady rates whose P99 TTFT and TPOT are within it, and the goodput there."""
    frame = comparison_frame(table_csvs)
    if frame.empty:
        return pd.DataFrame(columns=[c.key for c in CAPACITY])
    rows = []
    rates = frame[(frame["mode"] == "rate") & frame["load"].map(math.isfinite)]
    for key, points in rates.groupby(["model", "engine", "quant", "sweep"], sort=True):
        target = dict((slo or {}).get(str(key[3])) or {})
        steady: list[dict[str, Any]] = []
        first_saturated = math.nan
        for point in points.sort_values("load").to_dict("records"):
            if "saturated" in str(point.get("validity") or ""):
                first_saturated = point["load"]
                break
            if not _blank(point.get("validity")):
                steady.append(point)
        within = [p for p in steady if target and _within(p, target)]
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


def _within(point: Mapping[str, Any], target: Mapping[str, float]) -> bool:
    """Every P99 the SLO names is measured and within it."""
    for name, limit in target.items():
        value = point.get(f"p99_{name[: -len('_ms')]}_ms")
        if value is None or _blank(value) or float(value) > limit:
            return False
    return True


def write_capacity(
    table_csvs: Sequence[PathLike],
    out_csv: PathLike,
    out_md: PathLike,
    out_html: PathLike,
    slo: SloMap | None = None,
) -> pd.DataFrame:
    """The capacity table (`capacity_frame`) as CSV, Markdown and HTML."""
    frame = capacity_frame(table_csvs, slo)
    notes = (
        "capacity: the highest offered rate (req/s) measured as steady state, going up from "
        "the lowest rate until the first saturated point (validity: achieved / offered under "
        "0.95, or TTFT or queue growing through the run); — : no steady rate measured.",
        "A capacity equal to the highest rate measured is a lower bound: add higher rates.",
        "SLO capacity: the highest of those rates whose P99 TTFT and TPOT are within the "
        "sweep's `slo`; goodput there: requests (and their output tokens) per second that met "
        "every SLO, per request (vllm bench serve's goodput).",
    )
    write_all(
        frame, CAPACITY, "Capacity", Path(out_csv), Path(out_md), Path(out_html),
        [""] * len(frame), notes,
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
    table_csvs: Sequence[PathLike], out_csv: PathLike, out_md: PathLike, out_html: PathLike
) -> pd.DataFrame:
    """The cross-engine comparison: one row per engine x model x quant x sweep point with the
    key metrics (COMPARISON columns), from the per-engine table CSVs. Returns its frame."""
    frame = comparison_frame(table_csvs)
    # Markdown/HTML leave out an offered-load column that no row uses; the CSV keeps both
    shown = [
        c for c in COMPARISON if c.key not in ("rate", "concurrency") or frame[c.key].notna().any()
    ]
    write_all(
        frame, shown, "Cross-engine comparison", Path(out_csv), Path(out_md), Path(out_html),
        _group_classes(frame), NOTES, csv_columns=COMPARISON,
    )  # fmt: skip
    return frame
