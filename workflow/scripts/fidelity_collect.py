"""Fidelity's collection: start the engine's server as its first sweep does, send each prompt
once (greedy, top-k logprobs), stop."""

from pathlib import Path

from enginebench.sweep import run_job

inp, out, w, log = snakemake.input, snakemake.output, snakemake.wildcards, snakemake.log
run_job(
    snakemake.params.spec, inp.get("software"), inp.model_source,
    outputs=[out.records, out.server], attic=Path(out.server).parent / "fidelity-failed",
    job=f"fidelity_collect {w.engine}/{w.model}/{w.quant}", logs=(log.collect, log.server),
    failed="see the log",
)  # fmt: skip
