"""Fidelity's collection: start the engine's server as its first sweep does, send each prompt
once (greedy, top-k logprobs), stop."""

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
attic = Path(out.server).parent / "fidelity-failed"
try:
    with logged(snakemake.log.collect):
        status = run_sweep(spec)
except BaseException:  # interrupted: nothing half-written stays where the next run looks
    set_aside([out.records, out.server], attic)
    raise
if status != 0:
    server = Path(out.server)
    error = read_json(server).get("error") if server.is_file() else None
    kept = set_aside([out.records, out.server], attic)
    sys.exit(
        f"fidelity_collect {w.engine}/{w.model}/{w.quant} failed: {error or 'see the log'}; "
        f"kept in {kept}; see {snakemake.log.collect} and {snakemake.log.server}"
    )
