"""The tidy results table: one row per engine x model x quant x sweep x point (x repeat), the
summary's own keys as columns plus provenance, written as CSV and Parquet. Every table, plot
and report page renders from it (`read_results`), and `mean_over_repeats` folds repeats into
one row per point with 95% confidence intervals."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from enginebench.metric_registry import CI_SUFFIX, IDENTITY, METRICS, REGISTRY
from enginebench.report.load import load_points, summaries_in

PathLike = str | os.PathLike[str]

# a row's identity; a point's repeats share every key but `repeat` and `point`
KEYS = ["engine", "model", "quant", "sweep", "mode", "load"]

# Student's t, two-sided 95%, by degrees of freedom (the table every statistics text prints;
# beyond 30 the normal approximation is within 2%)
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t95(df: int) -> float:
    return _T95[df - 1] if df <= len(_T95) else 1.96


def load_runs(
    runs: Iterable[tuple[Sequence[PathLike] | None, PathLike | None]],
) -> pd.DataFrame:
    """The tidy table of several sweeps: (summary paths, server.json) per sweep; paths None:
    every point in the sweep's points/ folder (`load.summaries_in`)."""
    frames = []
    for paths, server in runs:
        if paths is None and server is None:
            raise ValueError("a sweep without summary paths needs its server.json")
        found = [Path(p) for p in paths] if paths is not None else summaries_in(None, str(server))
        frames.append(load_points(found, None if server is None else Path(server)))
    frames = [f for f in frames if len(f)]
    if not frames:
        return normalize(pd.DataFrame(columns=[m.key for m in IDENTITY]))
    return normalize(pd.concat(frames, ignore_index=True))


def _bool_like(values: pd.Series) -> bool:
    present = values.dropna()
    return len(present) > 0 and all(isinstance(v, bool | np.bool_) for v in present)


def normalize(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns in one order (identity, the registry's metrics, the summary's other keys sorted,
    provenance) with one dtype each: the registry's where it knows the key; else numbers as
    float64, flags as boolean, text as object with None for blanks. A table read back from CSV
    or Parquet normalizes to the same frame."""
    known = [k for k in REGISTRY if k in frame]
    registered = {m.key for m in (*IDENTITY, *METRICS)}
    head = [k for k in known if k in registered]
    tail = [k for k in known if k not in registered]
    other = sorted(c for c in frame.columns if c not in REGISTRY)
    out = {key: _typed(key, frame[key]) for key in [*head, *other, *tail]}
    return pd.DataFrame(out).reset_index(drop=True)


def _typed(key: str, values: pd.Series) -> pd.Series:
    spec = REGISTRY.get(key)
    if spec is not None and spec.dtype == "Int64":
        return pd.to_numeric(values, errors="coerce").round().astype("Int64")
    if spec is not None and spec.dtype == "float64":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if spec is None and _bool_like(values):
        return values.map(_as_bool).astype("boolean")
    if spec is None and _numeric(values):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    return values.map(_as_text).astype(object)


def _as_bool(value: Any) -> Any:
    return pd.NA if _missing(value) else bool(value)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _numeric(values: pd.Series) -> bool:
    present = values.dropna()
    if not len(present):
        return True  # all blank: a number column with nothing measured
    return all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in present)


def _as_text(value: Any) -> Any:
    return None if _missing(value) else str(value)


def write_results(frame: pd.DataFrame, out_csv: PathLike, out_parquet: PathLike) -> None:
    frame = normalize(frame)
    for path in (out_csv, out_parquet):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_csv, index=False, na_rep="", float_format="%.10g")
    frame.to_parquet(out_parquet, index=False)


def read_results(path: PathLike) -> pd.DataFrame:
    """The tidy table from its CSV or Parquet file, normalized (the same frame either way)."""
    if str(path).endswith(".parquet"):
        return normalize(pd.read_parquet(path))
    # CSV cannot tell text from numbers: the registry's text columns are read as written
    text = {k: str for k, m in REGISTRY.items() if m.dtype == "object"}
    raw = pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False, dtype=text)
    return normalize(raw)


def mean_over_repeats(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per point: with repeats, each numeric metric's mean and, in `<key>_ci95`, the
    half-width of its 95% confidence interval (Student's t over the repeats' values);
    `repeats` counts the measured repeats; validity lists each flag with how many repeats
    raised it (`saturated (2/3)`). Without repeats the rows come back as they are."""
    if frame.empty or "repeat" not in frame or not (frame["repeat"].fillna(0) > 0).any():
        return frame.assign(repeats=[1 if s == "ok" else 0 for s in frame.get("status", [])])
    numeric = [m.key for m in METRICS if m.dtype != "object" and m.key in frame]
    rows = []
    for _, group in frame.groupby(KEYS, sort=False, dropna=False):
        measured = group[group["status"] == "ok"]
        row = group.iloc[0].to_dict()
        if len(group) == 1 and not (group["repeat"].fillna(0) > 0).any():
            # a point of a sweep without repeats (beside sweeps with them): as it is
            rows.append(row | {"repeats": len(measured)})
            continue
        row["point"] = str(row["point"]).rsplit("-r", 1)[0]
        row["repeat"] = 0
        row["repeats"] = len(measured)
        row["status"] = "ok" if len(measured) else str(group["status"].iloc[0])
        for key in numeric:
            values = pd.to_numeric(measured[key], errors="coerce").dropna().astype(float)
            row[key] = values.mean() if len(values) else math.nan
            if len(values) >= 2:
                sem = values.std(ddof=1) / math.sqrt(len(values))
                row[key + CI_SUFFIX] = t95(len(values) - 1) * sem
        row["validity"] = _validity(list(measured["validity"]), len(measured))
        rows.append(row)
    return pd.DataFrame(rows)


def _validity(values: list[Any], n: int) -> str | None:
    """`ok`, or each flag raised with the count of repeats that raised it."""
    known = [v for v in values if isinstance(v, str)]
    if not known:
        return None
    counts: dict[str, int] = {}
    for text in known:
        for flag in filter(None, (f.strip() for f in text.split(","))):
            if flag != "ok":
                counts[flag] = counts.get(flag, 0) + 1
    return ", ".join(f"{f} ({c}/{n})" for f, c in counts.items()) or "ok"
