"""Own one engine server for one named sweep: start, warm up, run the points in order, stop."""

from pathlib import Path

from enginebench.sweep import run_job

inp, out, w, log = snakemake.input, snakemake.output, snakemake.wildcards, snakemake.log
run_job(
    snakemake.params.spec, inp.get("software"), inp.model_source,
    outputs=[out.points, out.server], attic=Path(out.server).parent / "failed",
    job=f"serve_sweep {w.engine}/{w.model}/{w.quant}/{w.sweep}", logs=(log.sweep, log.server),
    failed="a sweep point failed",
)  # fmt: skip
