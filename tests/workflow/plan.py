"""Run Snakemake on the project's workflow from a scratch directory and read its plan."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
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


# what any change to a result reruns after its own jobs: the cross-engine outputs and `all`
AGGREGATES = {
    "results_table": 1,
    "comparison": 1,
    "capacity": 1,
    "plots": 1,
    "manifest": 1,
    "all": 1,
}


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


def scratch_workdir(path: Path) -> Path:
    """A work directory that shares the repo's engine builds and venvs (resources/engines,
    resources/envs), so every test and `make run` use one llama.cpp build and one venv per
    engine; models and results stay its own."""
    for shared in ("engines", "envs"):
        target = REPO / "resources" / shared
        target.mkdir(parents=True, exist_ok=True)
        link = path / "resources" / shared
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return path


def run_workflow(
    workdir: Path, configfile: Path, *extra: str, timeout: float = 3000
) -> subprocess.CompletedProcess[str]:
    """A real run through the local profile (the same one `make run` uses)."""
    return snakemake(
        workdir,
        "--profile",
        str(REPO / "profiles" / "local"),
        "--configfile",
        str(configfile),
        *extra,
        timeout=timeout,
    )


def our_processes(workdir: Path) -> list[str]:
    """Live processes started for a test's work directory: their working directory is in it or
    their command line names it."""
    found = []
    root = str(workdir.resolve())
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.info["pid"] == os.getpid():
            continue
        cmd = " ".join(proc.info["cmdline"] or ())
        cwd = proc.info["cwd"] or ""  # None: gone, or another user's
        if cmd and (root in cmd or cwd == root or cwd.startswith(root + "/")):
            found.append(f"{proc.info['pid']}: {cmd}")
    return found
