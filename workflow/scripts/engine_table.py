"""The per-engine table (CSV, Markdown, HTML) of one engine x model x quant."""

from enginebench.report.tables import write_engine_table
from enginebench.scriptio import logged

out = snakemake.output
with logged(snakemake.log[0]):
    write_engine_table(snakemake.input.summaries, snakemake.input.server, out.csv, out.md, out.html)
