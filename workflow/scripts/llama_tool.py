"""One more llama.cpp tool from the instance's finished build."""

from pathlib import Path

from enginebench.engines.build import build_tool
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    root = Path(snakemake.input.build).parent.parent
    print(build_tool(root, snakemake.wildcards.tool, snakemake.threads))
