"""results/manifest.json (every result with its provenance) and the report's provenance page."""

from enginebench.report.manifest import write_manifest
from enginebench.scriptio import logged

inp, out = snakemake.input, snakemake.output
with logged(snakemake.log[0]):
    write_manifest(
        server_jsons=list(inp.servers),
        summaries=list(snakemake.params.summaries),
        model_sources=list(inp.models),
        tables=list(inp.tables),
        out_json=out.manifest,
        out_html=out.html,
    )
