"""The per-engine table (CSV, Markdown, HTML) of one engine x model x quant x sweep."""

from enginebench.report.tables import write_engine_table
from enginebench.scriptio import logged

out = snakemake.output
with logged(snakemake.log[0]):
    summaries = snakemake.params.summaries  # every point the sweep defines, inside input.points
    write_engine_table(summaries, snakemake.input.server, out.csv, out.md, out.html)
