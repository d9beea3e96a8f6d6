"""An engine's source at its pinned tag or commit (EngineSpec.source); the commit recorded."""

import sys
from pathlib import Path

from enginebench.engines.source import RECORD, SourceError, fetch_git
from enginebench.scriptio import logged

p = snakemake.params
try:
    with logged(snakemake.log[0]):
        info = fetch_git(Path(snakemake.output[0]), p.url, p.ref, record=RECORD)
        print(f"{p.url} {p.ref} -> {info['commit']}")
except SourceError as e:  # one line for Snakemake's error report; the traceback is in the log
    sys.exit(f"engine_source {snakemake.wildcards.engine}: {e}; see {snakemake.log[0]}")
