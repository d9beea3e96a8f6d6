"""Record what a local model path holds (file hashes), so results name the exact weights."""

from pathlib import Path

from enginebench.models.sources import local
from enginebench.scriptio import logged, write_json

with logged(snakemake.log[0]):
    write_json(snakemake.output.source, {"source": "local", **local(Path(snakemake.params.path))})
