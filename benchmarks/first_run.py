"""How long `make run` takes on a machine that never built anything (issue 23: under 30 minutes,
MLC-LLM included). A benchmark, not a test: it clones this checkout into a fresh folder and runs
`make run` there with ccache disabled and an empty uv cache (pip's own cache stays as the machine
has it, as in the README's earlier rows; let nothing else run meanwhile), then
prints the host, every job's wall time, the run by phase and every point's flags. `--report DIR`
prints the same for a run made earlier in DIR.

The host comes first because it decides the figure: this VM is placed on different hosts from
one session to the next. The same build of llama.cpp took 7.2-7.6 min on an AMD EPYC (AVX2) and
4.4 on 2026-12-06, a day whose recorded runs name an Intel Xeon (AMX, AVX-512).

By phase: each second of the run is shared equally among the jobs running in it, so the phases
add up to the run's wall time (a job beside another counts half). Inside serving and fidelity,
summed over their jobs: the servers' starts (each server's own time to ready, server.json), the
warm-ups, fidelity's requests and the points' measured durations.

    .venv/bin/python benchmarks/first_run.py [--dir /tmp/first-run]
    .venv/bin/python benchmarks/first_run.py --report /tmp/first-run
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from enginebench.jsonfile import read_json

REPO = Path(__file__).resolve().parent.parent
PHASES = {  # rule -> phase; rules not named here are "tables and report"
    "engine_env": "environments",
    "llamacpp_source": "sources",
    "mlc_source": "sources",
    "build_llamacpp": "builds",
    "build_mlc": "builds",
    "llama_tool": "builds",
    "synthesize_model": "models and prompts",
    "convert_gguf": "models and prompts",
    "quantize_gguf": "models and prompts",
    "prepare_model": "models and prompts",
    "materialize_prompts": "models and prompts",
    "serve_sweep": "serving",
    "llama_bench": "serving",
    "fidelity_collect": "fidelity",
    "fidelity_score": "fidelity",
    "llama_kld": "fidelity",
}
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


@dataclass
class Job:
    rule: str
    wildcards: str
    start: float
    end: float | None = None


def jobs_of(log: Path) -> list[Job]:
    """The jobs of a Snakemake log, in the order they started (a job that never finished: end
    None)."""
    jobs: dict[str, Job] = {}
    now, rule = 0.0, None
    for line in log.read_text(errors="replace").splitlines():
        if m := STAMP.match(line):
            now, rule = datetime.strptime(m[1], "%a %b %d %H:%M:%S %Y").timestamp(), None
        elif m := re.match(r"(?:local)?rule (\w+):$", line):
            rule = m[1]
        elif rule and (m := re.match(r"\s+jobid: (\d+)$", line)):
            jobs[m[1]] = Job(rule, "", now)
            last = jobs[m[1]]
        elif rule and (m := re.match(r"\s+wildcards: (.*)$", line)):
            last.wildcards = m[1]
        elif (m := re.match(r"Finished job(?:id:)? (\d+)", line)) and m[1] in jobs:
            jobs[m[1]].end = now
    return list(jobs.values())


def by_phase(jobs: list[Job]) -> dict[str, float]:
    """Seconds of the jobs' span per phase, each second shared among the jobs running in it."""
    spans = [(j.start, j.end, PHASES.get(j.rule, "tables and report")) for j in jobs if j.end]
    out: dict[str, float] = defaultdict(float)
    for t in range(int(min(s[0] for s in spans)), int(max(s[1] for s in spans))):
        running = [phase for start, end, phase in spans if start <= t < end]
        for phase in running:
            out[phase] += 1 / len(running)
        if not running:
            out["between jobs"] += 1
    return dict(out)


def serving_split(results: Path) -> dict[str, float]:
    """The servers' starts, warm-ups and points' measured durations, summed over every job that
    started a server (server.json of each sweep and fidelity-server.json)."""
    out: dict[str, float] = defaultdict(float)
    for path in [*results.glob("*/*/*/*/server.json"), *results.glob("*/*/*/fidelity-server.json")]:
        rec = read_json(path)
        kind = "fidelity" if path.name.startswith("fidelity") else "serving"
        out[f"{kind} server starts"] += (rec.get("server") or {}).get("startup_s") or 0.0
        out["serving warm-ups"] += sum(w.get("seconds", 0.0) for w in rec.get("warmup", []))
        out["fidelity requests"] += (rec.get("fidelity") or {}).get("seconds", 0.0)
    return dict(out)


def report(run: Path, wall_s: float | None) -> None:
    host = read_json(run / "results" / "manifest.json")["host"]
    cpu = host.get("cpu") or {}
    print(f"host: {cpu.get('model')}, {cpu.get('usable_cores')} usable cores, flags "
          f"{' '.join(cpu.get('flags') or []) or '-'}, kernel {host.get('kernel')}")  # fmt: skip
    logs = sorted((run / ".snakemake" / "log").glob("*.snakemake.log"))
    jobs = jobs_of(logs[0])  # the run's; the `--report` call after it logs no job
    start = min(j.start for j in jobs)
    print(f"\n{'start':8} {'wall s':>7}  rule                  wildcards")
    for j in jobs:
        wall = f"{j.end - j.start:7.0f}" if j.end is not None else "      ?"
        print(f"{datetime.fromtimestamp(j.start):%H:%M:%S} {wall}  {j.rule:21} {j.wildcards}")
    span = max(j.end or j.start for j in jobs) - start
    print(f"\njobs' span {span / 60:.1f} min", end="")
    print(f", make run {wall_s / 60:.1f} min (setup and the report outside the jobs)"
          if wall_s else "")  # fmt: skip
    phases = by_phase(jobs)
    results = pd.read_csv(run / "results" / "results.csv", dtype={"completed": "Int64"})
    split = serving_split(run / "results")
    split["points' measured durations"] = float(results["duration"].fillna(0).sum())
    print("\nphase                       min  (each second shared among the jobs running in it)")
    for name, s in sorted(phases.items(), key=lambda kv: -kv[1]):
        print(f"{name:26} {s / 60:5.1f}")
    print("\ninside serving and fidelity (summed, min)")
    for name, s in split.items():
        print(f"{name:26} {s / 60:5.1f}")
    cols = ["engine", "quant", "sweep", "point", "status", "validity", "completed", "duration"]
    print("\nevery point's status and validity (results/results.csv)")
    print(results[[c for c in cols if c in results]].to_string(index=False))


def fresh_run(dest: Path) -> float:
    """`make run` in a fresh clone of this checkout's HEAD at `dest`; its wall seconds."""
    if dest.exists():
        raise SystemExit(f"{dest} exists: name a folder that does not (--dir)")
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    env = {**os.environ, "CCACHE_DISABLE": "1", "UV_CACHE_DIR": str(dest / ".uv-cache-cold")}
    t0 = time.monotonic()
    with open(dest / "make-run.log", "w") as log:
        rc = subprocess.run(["make", "run"], cwd=dest, env=env, stdout=log, stderr=log).returncode
    wall = time.monotonic() - t0
    if rc != 0:
        raise SystemExit(f"make run failed (exit {rc}) after {wall / 60:.1f} min: see "
                         f"{dest / 'make-run.log'}")  # fmt: skip
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/enginebench-first-run"),
                    help="where to clone and run (must not exist)")  # fmt: skip
    ap.add_argument("--report", type=Path, metavar="DIR", help="only report on a run in DIR")
    args = ap.parse_args()
    if args.report:
        report(args.report, None)
        return
    wall = fresh_run(args.dir)
    report(args.dir, wall)


if __name__ == "__main__":
    main()
