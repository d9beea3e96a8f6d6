"""Read the sweep-point summaries of one engine x model x quant (plus its `server.json`) into
one row per point, with metrics under the summary's own key names (see ARCHITECTURE.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from enginebench.report.points import SweepPoint, point_of

PERCENTILES = (50, 90, 99)
LATENCIES = ("ttft", "tpot", "itl", "e2el")

# summary keys copied as they are
COUNT_KEYS = ("num_prompts", "completed", "failed", "short_outputs")
TOKEN_KEYS = ("total_input_tokens", "total_output_tokens")
RATE_KEYS = (
    "duration",
    "request_throughput",
    "input_throughput",
    "output_throughput",
    "total_token_throughput",
    "achieved_request_rate",
)
PROVENANCE_KEYS = (
    "engine", "engine_version", "engine_commit", "model", "model_sha", "quant", "sweep",
)  # fmt: skip

# status of a point: measured; summary file absent; no request completed
OK, MISSING, NONE_COMPLETED = "ok", "missing", "none-completed"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when the file is absent or not a JSON object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _num(value: Any) -> float:
    """A float from a summary value (`None`, `"inf"`, numbers) -> NaN when absent."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def latency_key(metric: str, pct: int) -> str:
    return f"p{pct}_{metric}_ms"


def _latencies(summary: dict[str, Any]) -> dict[str, float]:
    """p{50,90,99} of every latency metric; p50 falls back to `median_*` (always written)."""
    out = {}
    for metric in LATENCIES:
        for pct in PERCENTILES:
            key = latency_key(metric, pct)
            value = summary.get(key)
            if value is None and pct == 50:
                value = summary.get(f"median_{metric}_ms")
            out[key] = _num(value)
    return out


def _from_path(path: Path) -> dict[str, str]:
    """engine/model/quant/sweep from `.../<engine>/<model>/<quant>/<sweep>/points/<point>.json`
    (the workflow's layout)."""
    parts = path.parts
    if len(parts) >= 6 and parts[-2] == "points":
        return dict(zip(("engine", "model", "quant", "sweep"), parts[-6:-2], strict=True))
    return {}


def provenance_of(
    server: dict[str, Any] | None, summary: dict[str, Any] | None, path: Path
) -> dict[str, str | None]:
    """Provenance columns: `server.json` first, then the summary's `metadata`, then the path,
    then the summary's `backend` / `model_id`."""
    server = server or {}
    meta = (summary or {}).get("metadata") or {}
    from_path = _from_path(path)
    fallback = {"engine": (summary or {}).get("backend"), "model": (summary or {}).get("model_id")}
    out: dict[str, str | None] = {}
    for key in PROVENANCE_KEYS:
        found = (src.get(key) for src in (server, meta, from_path, fallback))
        out[key] = next((str(v) for v in found if not _unset(v)), None)
    return out


def _unset(value: Any) -> bool:
    """None, "" and the spellings of null that `--metadata k=null` leaves behind."""
    return value is None or str(value).strip().lower() in ("", "null", "none", "nan")


def point_row(path: Path, server: dict[str, Any] | None = None) -> dict[str, Any]:
    """One table row from one summary file (a row of blanks when the file is missing)."""
    summary = read_json(path)
    point: SweepPoint = point_of(path, summary)
    row: dict[str, Any] = {"point": point.label, "mode": point.mode, "load": point.load}
    row |= provenance_of(server, summary, path)
    if summary is None:
        row |= {k: math.nan for k in (*COUNT_KEYS, *TOKEN_KEYS, *RATE_KEYS)}
        row |= {latency_key(m, p): math.nan for m in LATENCIES for p in PERCENTILES}
        row["status"] = MISSING
        return row
    row |= {k: _num(summary.get(k)) for k in (*COUNT_KEYS, *TOKEN_KEYS, *RATE_KEYS)}
    if math.isnan(row["num_prompts"]):
        row["num_prompts"] = _num(summary.get("completed")) + _num(summary.get("failed"))
    if math.isnan(row["input_throughput"]) and row["duration"] > 0:
        row["input_throughput"] = row["total_input_tokens"] / row["duration"]
    if math.isnan(row["short_outputs"]):
        row["short_outputs"] = 0.0
    row |= _latencies(summary)
    row["status"] = OK
    if not row["completed"] > 0:
        # latencies of zero requests are not zero: blank them
        row |= {latency_key(m, p): math.nan for m in LATENCIES for p in PERCENTILES}
        row["status"] = NONE_COMPLETED
    return row


def load_points(summary_paths: Iterable[Path], server_json: Path | None = None) -> pd.DataFrame:
    """One row per sweep point, ordered (open loop by rate, `inf` last; then closed loop).
    Columns: point, mode, load, PROVENANCE_KEYS, COUNT_KEYS, TOKEN_KEYS, RATE_KEYS,
    p{50,90,99}_{ttft,tpot,itl,e2el}_ms, status."""
    server = read_json(server_json) if server_json is not None else None
    rows = [point_row(Path(p), server) for p in summary_paths]
    if not rows:
        return pd.DataFrame(columns=["point", "mode", "load", "status", *PROVENANCE_KEYS])
    frame = pd.DataFrame(rows)
    frame["_order"] = [0 if m == "rate" else 1 for m in frame["mode"]]
    frame = frame.sort_values(["_order", "load"], kind="stable").drop(columns="_order")
    return frame.drop_duplicates("point").reset_index(drop=True)
