"""results/manifest.json (every result with its provenance) and the report's provenance page."""

from enginebench.report.load import summaries_in
from enginebench.report.manifest import write_manifest
from enginebench.scriptio import logged

inp, out = snakemake.input, snakemake.output
with logged(snakemake.log[0]):
    write_manifest(
        server_jsons=[server for _, server in snakemake.params.runs],
        summaries=[p for run in snakemake.params.runs for p in summaries_in(*run)],
        model_sources=list(inp.models),
        tables=list(inp.tables),
        left_out=list(snakemake.params.left_out),
        out_json=out.manifest,
        out_html=out.html,
    )
