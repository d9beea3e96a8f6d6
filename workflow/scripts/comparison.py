"""The cross-engine comparison table."""

from enginebench.report.tables import write_comparison
from enginebench.scriptio import logged

out = snakemake.output
with logged(snakemake.log[0]):
    write_comparison(list(snakemake.input), out.csv, out.md, out.html)
