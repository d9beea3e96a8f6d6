"""TTFT/TPOT percentiles and achieved throughput vs offered load (open and closed loop), for one
model."""

from pathlib import Path

from enginebench.report.plots import write_plots
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    out_dir = Path(snakemake.output.ttft_png).parent
    write_plots(snakemake.input[0], out_dir, [snakemake.wildcards.model], ("rate", "concurrency"))
