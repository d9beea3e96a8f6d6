"""Fidelity's score: the engine's greedy paths against the reference model (transformers)."""

from enginebench.fidelity.score import score_file
from enginebench.scriptio import logged

inp, out, p = snakemake.input, snakemake.output, snakemake.params
with logged(snakemake.log[0]):
    score_file(inp.records, inp.server, inp.hf, out[0], p.max_tokens, **p.reference)
