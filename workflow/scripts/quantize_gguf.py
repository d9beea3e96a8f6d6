"""f16 GGUF -> a quantized GGUF with llama-quantize."""

from pathlib import Path

from enginebench.models.gguf import quantize
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    quantize(
        Path(snakemake.input.quantize),
        Path(snakemake.input.gguf),
        Path(snakemake.output[0]),
        snakemake.wildcards.quant,
    )
