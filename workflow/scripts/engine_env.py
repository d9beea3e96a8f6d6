"""An engine's software environment, built from its envs/ file on first use."""

import json
import sys
from pathlib import Path

out = Path(snakemake.output[0])
if "/.snakemake/conda/" in sys.prefix:
    # --software-deployment-method conda built it from the same file: record its python
    # (stdlib only here: the conda env does not hold enginebench)
    out.write_text(json.dumps({"kind": "conda", "python": sys.executable}, indent=2) + "\n")
else:
    from enginebench.engines.envs import build_venv
    from enginebench.scriptio import logged, write_json

    with logged(snakemake.log[0]):
        kind = snakemake.wildcards.engine  # the environment's engine kind
        info = build_venv(Path(snakemake.input[0]), out.parent / "venv", kind=kind)
        write_json(out, {"kind": "venv", "env_file": snakemake.input[0], **info})
