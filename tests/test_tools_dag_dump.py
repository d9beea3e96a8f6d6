"""tools/dag_dump.py: the embedded config's jobs as JSON, params included, the same every run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "dag_dump.py"


def test_dump_of_the_embedded_config(tmp_path: Path) -> None:
    # two runs at once (each ~2 s), with other hash seeds: no set or dict order leaks through
    runs = [
        subprocess.Popen(
            [sys.executable, str(TOOL)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=dict(os.environ, PYTHONHASHSEED=seed),
        )
        for seed in ("1", "2")
    ]
    outs = []
    for proc in runs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(out)
    assert outs[0] == outs[1]

    jobs = json.loads(outs[0])
    rules = {job["rule"] for job in jobs}
    assert {"all", "serve_sweep", "synthesize_model", "engine_table"} <= rules
    assert sum(job["rule"] == "serve_sweep" for job in jobs) == 12
    sweep = next(job for job in jobs if job["rule"] == "serve_sweep")
    assert set(sweep["wildcards"]) == {"engine", "model", "quant", "sweep"}
    spec = sweep["params"]["spec"]  # the run's RunSpec, as the job gets it
    assert spec["kind"] == spec["engine"] == sweep["wildcards"]["engine"]
    assert spec["out_dir"] in sweep["output"]
    assert sweep["output"] == sorted(sweep["output"]) and sweep["log"]
    assert jobs == sorted(jobs, key=lambda j: (j["rule"], j["output"]))
    assert list(tmp_path.iterdir()) == []  # planned in a scratch directory of its own
