"""How long planning takes: `snakemake -n` of a large config (10 models x 5 quants x 10 named
sweeps of llama.cpp) against a bare Snakefile that plans as many jobs, in fresh folders. Prints
the job counts, the median of `--runs` dry runs of each, and the ratio (issue 11 asks <= 1.25x).

    .venv/bin/python benchmarks/planning.py [--runs 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
QUANTS = ["f16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"]


def large_config() -> dict:
    """The embedded config with 10 models, 10 named sweeps and llama.cpp at 5 quants of each."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    models = {
        f"m{i}": {"source": "synthetic", "preset": "tiny-llama", "seed": i} for i in range(10)
    }
    sweeps = {f"s{i}": {"request_rates": [1 + i], "concurrency": [1]} for i in range(10)}
    benchmarks = [
        {"engine": "llamacpp", "model": m, "quants": QUANTS, "sweeps": list(sweeps)} for m in models
    ]
    return config | {"models": models, "benchmarks": benchmarks, "sweeps": sweeps}


BARE = """
N = {n}
rule all:
    input: expand("out/{{i}}.txt", i=range(N))
rule make:
    output: "out/{{i}}.txt"
    shell: "touch {{output}}"
"""


def dry_run(argv: list[str], cwd: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    total = re.search(r"^total\s+(\d+)$", proc.stdout + proc.stderr, re.M)
    return seconds, int(total.group(1)) if total else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "large.yaml"
        config.write_text(yaml.safe_dump(large_config()))
        ours = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
        ours += ["-n", "--cores", "2", "--configfile", str(config)]
        times, jobs = zip(*(dry_run(ours, REPO) for _ in range(args.runs)), strict=True)
        bare_dir = work / "bare"
        bare_dir.mkdir()
        (bare_dir / "Snakefile").write_text(BARE.format(n=jobs[0] - 1))
        bare = [*SNAKEMAKE, "-n", "--cores", "2"]
        bare_times, bare_jobs = zip(
            *(dry_run(bare, bare_dir) for _ in range(args.runs)), strict=True
        )
    ours_s, bare_s = statistics.median(times), statistics.median(bare_times)
    print(f"enginebench: {jobs[0]} jobs planned in {ours_s:.2f} s (median of {args.runs})")
    print(f"bare Snakefile: {bare_jobs[0]} jobs planned in {bare_s:.2f} s")
    print(f"ratio: {ours_s / bare_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
