"""Fetch (or copy) the tokenizer that the client counts tokens with, for GGUF-only models."""

from pathlib import Path

from enginebench.models.sources import fetch_tokenizer
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    fetch_tokenizer(snakemake.params.tokenizer, Path(snakemake.output[0]))
