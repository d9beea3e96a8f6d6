"""Fetch one GGUF/GGML file from a Hugging Face repo, pinned to its resolved commit sha."""

from pathlib import Path

from enginebench.models.sources import fetch_gguf
from enginebench.scriptio import logged, write_json

with logged(snakemake.log[0]):
    info = fetch_gguf(
        snakemake.params.repo,
        snakemake.params.filename,
        snakemake.params.revision,
        Path(snakemake.output.file),
    )
    write_json(snakemake.output.source, {"source": "gguf", **info})
