"""The per-engine table (CSV, Markdown, HTML) of one engine x model x quant x sweep."""

from enginebench.report.load import summaries_in
from enginebench.report.tables import write_engine_table
from enginebench.scriptio import logged

out = snakemake.output
with logged(snakemake.log[0]):
    # every point the sweep defines (or, for a search, every probe it ran), inside input.points
    summaries = summaries_in(snakemake.params.summaries, snakemake.input.server)
    write_engine_table(summaries, snakemake.input.server, out.csv, out.md, out.html)
