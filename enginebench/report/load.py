"""Read the sweep-point summaries of one engine x model x quant (plus its `server.json`) into
one row per point, with metrics under the summary's own key names (see ARCHITECTURE.md)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from enginebench import metric_registry as registry
from enginebench.metric_registry import METRICS
from enginebench.points import MODES, SweepPoint, parse_name
from enginebench.provenance import redact_argv, safe_env

PathLike = str | os.PathLike[str]

# the registry's metrics read as numbers (validity, a list in the summary, is read apart)
NUMERIC_KEYS = tuple(m.key for m in METRICS if m.kind != "text")
PROVENANCE_KEYS = (
    "engine", "kind", "engine_version", "engine_commit", "model", "model_sha", "quant", "sweep",
)  # fmt: skip
# summary keys kept out of the tidy table: provenance (read into its own columns), the argv
# (in server.json and the point's JSON), per-request indices and nested comparisons
LEFT_OUT = frozenset(
    {"provenance", "metadata", "argv", "short_output_indices", "token_count_discrepancies"}
)

# status of a point: measured; summary file absent; no request completed; not run by the sweep
# (`skip_past_saturation`: its validity says why)
OK, MISSING, NONE_COMPLETED, SKIPPED = "ok", "missing", "none-completed", "skipped"


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


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


MIGRATE = "give it one with tools/migrate_summaries.py"


def record_of(
    server: Mapping[str, Any] | None, summary: Mapping[str, Any] | None, path: Path
) -> Mapping[str, Any]:
    """Where a row's provenance is read: a measured point's own summary (the `provenance` the
    load generator wrote in it, with the point's own start and end); a point not measured, the
    run's `server.json` (the whole sweep's)."""
    if summary is None:
        return _object(server)
    own = summary.get("provenance")
    if not isinstance(own, Mapping):
        raise ValueError(f"{path}: a summary without its `provenance`; {MIGRATE}")
    return own


def provenance_of(record: Mapping[str, Any]) -> dict[str, str | None]:
    """The provenance columns (PROVENANCE_KEYS) of a run's record, as text."""
    return {k: None if _unset(v := record.get(k)) else str(v) for k in PROVENANCE_KEYS}


# -- the rest of the run's provenance (CSV-only columns, see columns.DETAILS) -----------------


def _host(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return _object(record.get("host"))


def _cpu(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return _object(_host(record).get("cpu"))


def _gpu_devices(gpu: Any) -> list[Mapping[str, Any]]:
    """The devices of a `host.gpu` record: collect_gpu's `{"devices": [...], ...}`, a bare list
    of devices, or one device."""
    if isinstance(gpu, Mapping):
        devices = gpu.get("devices")
        if isinstance(devices, list):
            return [d for d in devices if isinstance(d, Mapping)]
        return [gpu] if gpu.get("name") else []
    if isinstance(gpu, list):
        return [d for d in gpu if isinstance(d, Mapping)]
    return []


def _gpu_names(record: Mapping[str, Any]) -> str | None:
    """`NVIDIA H100 80GB HBM3`, `2 x NVIDIA H100 80GB HBM3`; None without a named GPU."""
    counts: dict[str, int] = {}
    for dev in _gpu_devices(_host(record).get("gpu")):
        if not _unset(dev.get("name")):
            counts[str(dev["name"])] = counts.get(str(dev["name"]), 0) + 1
    if not counts:
        return None
    return ", ".join(name if n == 1 else f"{n} x {name}" for name, n in counts.items())


def _gpu_field(record: Mapping[str, Any], *keys: str) -> Any:
    """A field of `host.gpu` (`driver_version`, `cuda_version`), else of its first device."""
    gpu = _host(record).get("gpu")
    for source in (_object(gpu), *_gpu_devices(gpu)[:1]):
        for key in keys:
            if not _unset(source.get(key)):
                return source[key]
    return None


def _argv(record: Mapping[str, Any]) -> Any:
    argv = record.get("server_argv")
    return redact_argv([str(a) for a in argv]) if isinstance(argv, list) else argv


def _env(record: Mapping[str, Any]) -> Any:
    env = record.get("env")
    if not isinstance(env, Mapping):
        return None  # never safe_env(None): that would read this process's environment
    # recorded redacted; secret-looking names dropped again, as the manifest does
    return safe_env({str(k): str(v) for k, v in env.items()}, keep=["*"])


# how each of the registry's DETAILS is read from a run's record, where it is not the record's
# own key of that name
_READERS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "server_argv": _argv,
    "server_env": _env,
    "hostname": lambda r: _host(r).get("hostname"),
    "cpu_model": lambda r: _cpu(r).get("model"),
    "cpu_usable_cores": lambda r: _cpu(r).get("usable_cores"),
    "memory_bytes": lambda r: _host(r).get("memory_bytes"),
    "memory_limit_bytes": lambda r: _host(r).get("cgroup_memory_limit_bytes"),
    "gpu": _gpu_names,
    "gpu_driver": lambda r: _gpu_field(r, "driver_version", "driver"),
    "cuda_version": lambda r: _gpu_field(r, "cuda_version", "cuda"),
}


def _own(key: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda r: r.get(key)


DETAILS = {m.key: _READERS.get(m.key, _own(m.key)) for m in registry.DETAILS}
assert _READERS.keys() <= DETAILS.keys(), "a reader for a key the registry does not list"
DETAIL_KEYS = tuple(DETAILS)
# the point's own: blank for a point that was not measured (not the whole sweep's)
POINT_DETAIL_KEYS = ("started", "finished")


def _text(value: Any) -> str:
    """One cell: lists and objects as compact JSON, booleans as `true`/`false`."""
    if isinstance(value, bool | list | dict | Mapping):
        if isinstance(value, Mapping):
            value = dict(value)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def details_of(record: Mapping[str, Any], measured: bool) -> dict[str, str | None]:
    """The rest of a point's provenance (DETAIL_KEYS), as text; `started`/`finished` blank for
    a point not measured (`record` is then the whole sweep's)."""
    out: dict[str, str | None] = {}
    for key, get in DETAILS.items():
        value = get(record) if measured or key not in POINT_DETAIL_KEYS else None
        out[key] = None if _unset(value) else _text(value)
    return out


def _unset(value: Any) -> bool:
    """None, "" and the spellings of null that `--metadata k=null` leaves behind."""
    return value is None or str(value).strip().lower() in ("", "null", "none", "nan")


def _scalar(value: Any) -> Any:
    """A summary value as one cell: numbers, flags and text as they are (`"inf"` a float),
    lists of scalars comma-joined; None for anything else."""
    if isinstance(value, str) and value.lower() in ("inf", "-inf", "nan"):
        return float(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(map(str, value))
    return None


def extras_of(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary's other keys, as tidy columns: scalars as they are, an object of scalars
    one column per field (`dispatch_lag_ms` -> `dispatch_lag_ms_p99`, `ttft_trend_p`)."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if key in LEFT_OUT:
            continue
        if isinstance(value, Mapping):
            for sub, v in value.items():
                if (cell := _scalar(v)) is not None or v is None:
                    out[f"{key}_{sub}"] = cell
        elif (cell := _scalar(value)) is not None or value is None:
            out[key] = cell
    return out


def _as_float(value: Any) -> float | None:
    try:
        return float(value)  # also "inf"
    except (TypeError, ValueError):
        return None


def point_of(path: Path, summary: Mapping[str, Any] | None = None) -> SweepPoint:
    """The sweep point of a summary: the `point` the load generator wrote in it (`--point`); of
    a point not measured (no summary), the planned name of its file."""
    if summary is None:
        named = parse_name(path.stem)
        if named is None:
            raise ValueError(f"{path}: not a point's file name (rate-<r>.json, conc-<n>.json)")
        return named
    own = _object(summary.get("point"))
    load = _as_float(own.get("load"))
    if own.get("mode") not in MODES or load is None:
        raise ValueError(f"{path}: a summary without its `point`; {MIGRATE}")
    return SweepPoint(own["mode"], load, repeat=int(own.get("repeat") or 0))


def point_row(path: Path, server: dict[str, Any] | None = None) -> dict[str, Any]:
    """One tidy row from one summary file (a row of blanks when the file is missing): the
    point, provenance, the registry's metrics as numbers, then the summary's other keys."""
    summary = read_json(path)
    point: SweepPoint = point_of(path, summary)
    row: dict[str, Any] = {
        "point": point.name, "mode": point.mode, "load": point.load, "repeat": point.repeat,
    }  # fmt: skip
    record = record_of(server, summary, path)
    row |= provenance_of(record)
    row |= details_of(record, measured=summary is not None)
    if summary is None:
        row |= {k: math.nan for k in NUMERIC_KEYS}
        row |= {"validity": None, "status": MISSING}
        ran = [p for p in _object(server).get("points") or () if p.get("name") == point.name]
        if ran and ran[-1].get("skipped"):
            row |= {"validity": "skipped_past_saturation", "status": SKIPPED}
        return row
    row |= {k: v for k, v in extras_of(summary).items() if k not in row}
    row |= {k: _num(summary.get(k)) for k in NUMERIC_KEYS}
    row |= validity_of(summary)
    row["status"] = OK
    if not row["completed"] > 0:
        # latencies of zero requests are not zero: blank them
        row |= {m.key: math.nan for m in METRICS if m.key.endswith("_ms") and m.key[0] == "p"}
        row["status"] = NONE_COMPLETED
    return row


def validity_of(summary: Mapping[str, Any]) -> dict[str, Any]:
    """`validity`: "ok" (a steady-state measurement) or its flags, comma-separated; None for a
    summary written before points were judged. `throughput_ratio`: achieved / offered."""
    flags = summary.get("validity")
    text = (", ".join(map(str, flags)) or "ok") if isinstance(flags, list) else None
    return {"validity": text, "throughput_ratio": _num(summary.get("throughput_ratio"))}


def summaries_in(paths: Iterable[PathLike] | None, server_json: PathLike) -> list[Path]:
    """A sweep's summary files: `paths` as given (a point the sweep defines but did not write
    shows as missing), or with None (a search, whose probes are chosen as it runs) every
    `<point>.json` in the `points/` folder beside `server_json`, in point order."""
    if paths is not None:
        return [Path(p) for p in paths]
    named = [(parse_name(p.stem), p) for p in (Path(server_json).parent / "points").glob("*.json")]
    return [p for point, p in sorted(named, key=lambda t: t[0].sort_key() if t[0] else ()) if point]


def load_points(summary_paths: Iterable[Path], server_json: Path | None = None) -> pd.DataFrame:
    """One row per sweep point (and repeat), ordered (open loop by rate, `inf` last; then
    closed loop; then replays; repeats in order). Columns: see `point_row`."""
    server = read_json(server_json) if server_json is not None else None
    rows = [point_row(Path(p), server) for p in summary_paths]
    if not rows:
        return pd.DataFrame(
            columns=["point", "mode", "load", "repeat", "status", *PROVENANCE_KEYS, *DETAIL_KEYS]
        )
    frame = pd.DataFrame(rows)
    frame["_order"] = [MODES.index(m) for m in frame["mode"]]
    frame = frame.sort_values(["_order", "load", "repeat"], kind="stable").drop(columns="_order")
    return frame.drop_duplicates("point").reset_index(drop=True)
