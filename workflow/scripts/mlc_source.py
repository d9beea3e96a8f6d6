"""MLC-LLM's source archive, checked against its sha256 and unpacked."""

from pathlib import Path

from enginebench.engines.mlcbuild import unpack_source
from enginebench.scriptio import logged

p = snakemake.params
with logged(snakemake.log[0]):
    unpack_source(Path(snakemake.input[0]), p.sha256, p.commit, Path(snakemake.output[0]))
