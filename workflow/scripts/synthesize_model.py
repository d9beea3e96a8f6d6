"""Make a seeded random-weight model of a named architecture (no download)."""

from pathlib import Path

from enginebench.models.synthetic import synthesize
from enginebench.scriptio import logged, write_json

with logged(snakemake.log[0]):
    info = synthesize(
        snakemake.params.preset,
        Path(snakemake.output.hf),
        seed=snakemake.params.seed,
        dtype=snakemake.params.dtype,
    )
    write_json(snakemake.output.source, {"source": "synthetic", **info})
