"""Give published summaries what the load generator now writes itself: the `point` it measured.

Summaries written before `enginebench bench --point` (docs/results/*/run-*/runs/*/) name their
point only in their file name (rate-2.json, conc-4.json, rate-1-r2.json); the report reads a
summary's own `point` first. Run once over the published results; a summary that has a `point`
is left as it is, so running it again changes nothing:

    .venv/bin/python tools/migrate_summaries.py docs/results
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from enginebench.jsonfile import write_json
from enginebench.points import parse_name


def migrate(root: Path) -> list[Path]:
    """Add `point` to each point summary under `root` that has none; the changed files."""
    changed = []
    for path in sorted(root.rglob("*.json")):
        point = parse_name(path.stem)
        if point is None:
            continue  # server.json, llama-bench.json, bandwidth.json, ...
        summary = json.loads(path.read_text())
        if not isinstance(summary, dict) or "point" in summary or "completed" not in summary:
            continue
        load = "inf" if math.isinf(point.load) else point.load
        own = {"name": point.name, "mode": point.mode, "load": load, "repeat": point.repeat}
        write_json(path, {**summary, "point": own}, sort_keys=False)
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
        print(f"{root}: {len(changed)} summaries given their point")
    return 0


if __name__ == "__main__":
    sys.exit(main())
