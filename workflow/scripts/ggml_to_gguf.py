"""Convert a legacy GGML file (e.g. *.ggmlv3.q4_K_M.bin) to GGUF with llama.cpp's converter."""

from pathlib import Path

from enginebench.models.gguf import convert_ggml_to_gguf
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    inp = snakemake.input
    convert_ggml_to_gguf(Path(inp.ggml), Path(snakemake.output[0]), Path(inp.src))
