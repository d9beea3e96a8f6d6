"""The cross-engine comparison table (its HTML page opens with the capacity table)."""

from enginebench.report.tables import write_comparison
from enginebench.scriptio import logged

out = snakemake.output
with logged(snakemake.log[0]):
    p = snakemake.params
    write_comparison(snakemake.input[0], out.csv, out.md, out.html, p.slo, p.instances)
