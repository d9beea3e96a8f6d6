"""HF weights -> GGUF with llama.cpp's own converter."""

from pathlib import Path

from enginebench.models.gguf import convert_hf_to_gguf
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    convert_hf_to_gguf(
        Path(snakemake.input.hf),
        Path(snakemake.output[0]),
        Path(snakemake.input.src),
        outtype=snakemake.wildcards.outtype,
    )
