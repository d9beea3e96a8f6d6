"""`results/manifest.json`: every result file with its sha256 and its provenance (the
`server.json` of the sweep that made it), so that a reader can tell two runs apart.

Layout (`schema` 1):
  generated, generated_by {enginebench_version, enginebench_commit, enginebench_dirty,
      snakemake_version}, host (the machine that wrote the manifest; each run has its own),
  runs[]     one per engine x model x quant x sweep: RUN_KEYS, host, packages,
      server_json(+_sha256)
  results[]  one per sweep point: summary, records (+ sha256, bytes), point, engine, model,
      quant, sweep, workload, seed, completed, failed, short_outputs, date, argv, run (its
      server_json)
  models{}   model name -> its source record (resources/models/<model>/source.json)
  tables[]   path, sha256, bytes, engine, model, quant, sweep
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from enginebench.provenance import (
    SERVER_JSON_KEYS,
    collect_host,
    enginebench_git,
    enginebench_version,
    now_iso,
    redact_argv,
    safe_env,
    sha256_file,
    snakemake_version,
)
from enginebench.report.landing import provenance_html

PathLike = str | os.PathLike[str]
SCHEMA = 1

# server.json keys carried into every run entry (written by enginebench.sweep); host and
# packages have their own places in a run entry
RUN_KEYS = (
    *(k for k in SERVER_JSON_KEYS if k not in ("host", "packages")),
    "model_path",
)


def _read(path: PathLike) -> dict[str, Any]:
    """A JSON object, or {} when the file is absent or unreadable (a missing point stays listed)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _file(path: Path) -> dict[str, Any]:
    """sha256 and size of a file; both None when it does not exist."""
    if not path.is_file():
        return {"sha256": None, "bytes": None}
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


_WHERE_KEYS = ("engine", "model", "quant", "sweep")


def _table_of(path: Path) -> dict[str, str | None]:
    """engine/model/quant/sweep of a table, `.../<engine>/<model>/<quant>/<sweep>/table.csv`
    (the workflow's layout; a table has no record of its own)."""
    parts = path.parts[:-1]
    if len(parts) >= 4:
        return dict(zip(_WHERE_KEYS, parts[-4:], strict=True))
    return dict.fromkeys(_WHERE_KEYS)


def run_entry(server_json: PathLike) -> dict[str, Any]:
    """One run from its server.json; secrets filtered again (argv options, env names)."""
    path = Path(server_json)
    server = _read(path)
    run = {k: server.get(k) for k in RUN_KEYS}
    run["server_argv"] = redact_argv(run["server_argv"] or [])
    run["env"] = safe_env(run["env"] or {}, keep=["*"])
    run["host"] = server.get("host")
    run["packages"] = server.get("packages")
    run["server_json"] = str(path)
    run["server_json_sha256"] = _file(path)["sha256"]
    return run


def result_entry(summary_path: PathLike, run: Mapping[str, Any]) -> dict[str, Any]:
    """One sweep point: its two files with their hashes, what it measured and how. Its
    provenance is the summary's own; a point not measured (no summary) takes its run's."""
    path = Path(summary_path)
    summary = _read(path)
    own = summary.get("provenance")
    record = own if isinstance(own, Mapping) else run
    point = summary.get("point")
    records = path.with_suffix(".jsonl")
    summary_file, records_file = _file(path), _file(records)
    return {
        "summary": str(path),
        "summary_sha256": summary_file["sha256"],
        "summary_bytes": summary_file["bytes"],
        "records": str(records),
        "records_sha256": records_file["sha256"],
        "records_bytes": records_file["bytes"],
        "point": point["name"] if isinstance(point, Mapping) else path.stem,
        **{k: record.get(k) for k in (*_WHERE_KEYS, "workload", "seed")},
        "completed": summary.get("completed"),
        "failed": summary.get("failed"),
        "short_outputs": summary.get("short_outputs"),
        "date": summary.get("date"),
        "argv": redact_argv(summary.get("argv") or []),
        "run": run.get("server_json"),
    }


def build_manifest(
    server_jsons: Sequence[PathLike],
    summaries: Sequence[PathLike],
    model_sources: Sequence[PathLike],
    tables: Sequence[PathLike] = (),
    left_out: Sequence[str] = (),
) -> dict[str, Any]:
    runs = [run_entry(p) for p in server_jsons]
    # a summary belongs to the server.json next to its points/ directory
    by_dir = {str(Path(r["server_json"]).parent): r for r in runs}
    results = []
    for path in summaries:
        p = Path(path)
        run = by_dir.get(str(p.parent.parent if p.parent.name == "points" else p.parent)) or {}
        results.append(result_entry(p, run))
    git = enginebench_git() or {}
    table_entries = []
    for path in tables:
        table_entries.append({"path": str(path), **_file(Path(path)), **_table_of(Path(path))})
    return {
        "schema": SCHEMA,
        "generated": now_iso(),
        "generated_by": {
            "enginebench_version": enginebench_version(),
            "enginebench_commit": git.get("commit"),
            "enginebench_dirty": git.get("dirty"),
            "snakemake_version": snakemake_version(),
        },
        "host": collect_host(),
        "runs": runs,
        "results": results,
        "models": {Path(p).parent.name: _read(p) for p in model_sources},
        "tables": table_entries,
        # runs the config names that did not complete (completed_only): not in these results
        "left_out": list(left_out),
    }


def write_manifest(
    *,
    server_jsons: Sequence[PathLike],
    summaries: Sequence[PathLike],
    model_sources: Sequence[PathLike],
    tables: Sequence[PathLike],
    out_json: PathLike,
    out_html: PathLike,
    left_out: Sequence[str] = (),
) -> dict[str, Any]:
    """`out_json` (the manifest) and `out_html` (the report's provenance page). Returns the
    manifest."""
    manifest = build_manifest(server_jsons, summaries, model_sources, tables, left_out)
    for out in (out_json, out_html):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    Path(out_html).write_text(provenance_html(manifest))
    return manifest
