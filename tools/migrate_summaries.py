"""Give summaries what the load generator now writes itself: the `point` it measured and the
run's `provenance`; the report reads a summary by those alone.

Summaries written before `enginebench bench --point` name their point only in their file name
(rate-2.json, conc-4.json, rate-1-r2.json); those written before `--provenance-file` left their
provenance to the run's `server.json` beside them (then to their `--metadata`). A summary given
one from server.json has no start and end of its own: they stay null. A key a summary has is
left as it is, so running this again changes nothing:

    .venv/bin/python tools/migrate_summaries.py docs/results
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from enginebench.jsonfile import write_json
from enginebench.points import parse_name

# server.json's keys that the load generator copies into each point's `provenance`
RUN_KEYS = (
    "engine", "kind", "engine_version", "engine_commit", "source_commit", "server_argv",
    "model", "model_source", "model_sha", "model_file_sha256", "model_path", "quant", "sweep",
    "workload", "seed", "enginebench_version", "enginebench_commit", "enginebench_dirty",
    "snakemake_version", "host", "env", "container",
)  # fmt: skip


def _server(path: Path) -> dict[str, Any]:
    """The run's server.json: beside the summary, or beside its points/ folder."""
    for folder in (path.parent, path.parent.parent):
        if (folder / "server.json").is_file():
            data = json.loads((folder / "server.json").read_text())
            return data if isinstance(data, dict) else {}
    return {}


def provenance(path: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """A summary's provenance as the report used to assemble it: server.json's, then the
    summary's `metadata`; `kind` the engine's where none was written; no point times."""
    server, meta = _server(path), summary.get("metadata") or {}
    out = {key: server.get(key, meta.get(key)) for key in RUN_KEYS}
    out["kind"] = out["kind"] or out["engine"]
    return out | {"started": None, "finished": None}


def migrate(root: Path) -> list[Path]:
    """Add `point` and `provenance` to each point summary under `root` that lacks them; the
    changed files."""
    changed = []
    for path in sorted(root.rglob("*.json")):
        point = parse_name(path.stem)
        if point is None:
            continue  # server.json, llama-bench.json, bandwidth.json, ...
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict) or "completed" not in summary:
            continue
        added: dict[str, Any] = {}
        if "point" not in summary:
            load = "inf" if math.isinf(point.load) else point.load
            added["point"] = {
                "name": point.name, "mode": point.mode, "load": load, "repeat": point.repeat,
            }  # fmt: skip
        if "provenance" not in summary:
            added["provenance"] = provenance(path, summary)
        if added:
            write_json(path, {**summary, **added}, sort_keys=False)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="folders of published results")
    args = parser.parse_args(argv)
    for root in args.roots:
        if not root.is_dir():
            print(f"migrate_summaries: {root} is not a folder", file=sys.stderr)
            return 2
        changed = migrate(root)
        print(f"{root}: {len(changed)} summaries given their point or provenance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
