"""TTFT/TPOT percentiles and achieved throughput vs offered rate, for one model."""

from pathlib import Path

from enginebench.report.plots import write_plots
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    write_plots(list(snakemake.input), Path(snakemake.output.ttft_png).parent, [snakemake.wildcards.model])
