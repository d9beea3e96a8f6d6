"""Own one engine server for one named sweep: start, warm up, run the points in order, stop."""

import sys
from pathlib import Path

from enginebench.runspec import RunSpec
from enginebench.scriptio import logged, read_json
from enginebench.sweep import run_sweep, set_aside

inp, out, w = snakemake.input, snakemake.output, snakemake.wildcards
spec = RunSpec.from_param(snakemake.params.spec).resolved(
    software=read_json(inp.software) if inp.get("software") else {},
    model_source=read_json(inp.model_source),
)
attic = Path(out.server).parent / "failed"
try:
    with logged(snakemake.log.sweep):
        status = run_sweep(spec)
except BaseException:  # interrupted (Ctrl-C, SIGTERM): keep what was measured, redo next run
    set_aside([out.points, out.server], attic)
    raise
if status != 0:
    # the server's own error (with the tail of its log) goes into Snakemake's error message
    server = Path(out.server)
    error = read_json(server).get("error") if server.is_file() else None
    kept = set_aside([out.points, out.server], attic)
    where = f"completed points kept in {kept}; see {snakemake.log.sweep} and {snakemake.log.server}"
    what = error or "a sweep point failed"
    sys.exit(f"serve_sweep {w.engine}/{w.model}/{w.quant}/{w.sweep} failed: {what}; {where}")
