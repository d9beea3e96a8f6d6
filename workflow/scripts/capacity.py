"""The capacity table: per engine x model x quant x sweep, the highest steady offered rate."""

from enginebench.report.tables import write_capacity
from enginebench.scriptio import logged

out = snakemake.output
with logged(snakemake.log[0]):
    write_capacity(snakemake.input[0], out.csv, out.md, out.html, snakemake.params.slo)
