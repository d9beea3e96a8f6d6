"""Run Snakemake on the project's workflow from a scratch directory and read its plan."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def default_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def snakemake(workdir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Snakemake on the repo's Snakefile with `workdir` as its working directory."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=workdir,
    )


_JOB_ROW = re.compile(r"^(\w+)\s+(\d+)$")


def planned_jobs(workdir: Path, configfile: Path, *extra: str) -> Counter[str]:
    """rule -> number of jobs Snakemake would run now (a dry run)."""
    proc = snakemake(workdir, "-n", "--quiet", "rules", "--configfile", str(configfile), *extra)
    if proc.returncode != 0:
        raise AssertionError(f"dry run failed:\n{proc.stdout}\n{proc.stderr}")
    jobs: Counter[str] = Counter()
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return jobs
    in_stats = False
    for line in text.splitlines():
        if line.startswith("Job stats"):
            in_stats = True
            continue
        m = _JOB_ROW.match(line.strip())
        if in_stats and m:
            if m.group(1) == "total":  # the table is printed twice; one is enough
                break
            jobs[m.group(1)] += int(m.group(2))
    return jobs
