"""Fetch a Hugging Face snapshot pinned to its resolved commit sha."""

from pathlib import Path

from enginebench.models.sources import fetch_hf
from enginebench.scriptio import logged, write_json

with logged(snakemake.log[0]):
    info = fetch_hf(snakemake.params.repo, snakemake.params.revision, Path(snakemake.output.hf))
    write_json(snakemake.output.source, {"source": "hf", **info})
