"""llama.cpp source at a pinned version (PyPI sdist that vendors it) or git commit."""

from pathlib import Path

from enginebench.engines.build import fetch_llamacpp_source
from enginebench.scriptio import logged, write_json

p = snakemake.params
with logged(snakemake.log[0]):
    out = Path(snakemake.output[0])
    if p.source == "pypi-sdist":
        info = fetch_llamacpp_source(out, version=p.version, sha256=p.sha256)
    else:
        info = fetch_llamacpp_source(out, commit=p.commit, git_url=p.git_url)
    write_json(out / "enginebench-source.json", info)
