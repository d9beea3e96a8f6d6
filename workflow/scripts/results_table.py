"""The tidy results table (CSV and Parquet): one row per engine x model x quant x sweep x point."""

from enginebench.report.tidy import load_runs, write_results
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    frame = load_runs(snakemake.params.runs)
    write_results(frame, snakemake.output.csv, snakemake.output.parquet)
    print(f"{len(frame)} rows, {len(frame.columns)} columns")
