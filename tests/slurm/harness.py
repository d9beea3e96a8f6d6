"""Helpers for tests that run workflows through a real single-node Slurm (tests/test_slurm.py).

* `slurm_up()`, `SlurmCluster.down()`: start, stop the test cluster (slurm_up.sh, slurm_down.sh).
* `derive_test_profile()`: a copy of a site profile (profiles/slurm) fitted to the test cluster.
* `run_workflow_with_profile()`: run Snakemake with a profile, as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROFILES = REPO / "profiles"
TOY_SNAKEFILE = HERE / "toy" / "Snakefile"
WORKFLOW_SNAKEFILE = REPO / "Snakefile"

# Exit status of slurm_up.sh for "this host cannot run a test cluster" (not root, no apt-get).
CANNOT_RUN = 3


class SlurmUnavailable(RuntimeError):
    """The test cluster cannot be brought up; `str()` says why."""


@dataclass
class SlurmCluster:
    """A running test cluster started by slurm_up.sh."""

    state_dir: Path
    cpus: int
    mem_mb: int
    gpus: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.state_dir / "slurm.conf"

    @property
    def partition(self) -> str:
        return "debug"

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) with SLURM_CONF pointing at this cluster."""
        env = dict(os.environ if base is None else base)
        env["SLURM_CONF"] = str(self.conf)
        return env

    def finished_jobs(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld has finished, from its job completion log (jobcomp/filetxt):
        job id -> fields (JobState, Name, Partition, NodeList, Tres, StartTime, EndTime, ...)."""
        log = self.state_dir / "log" / "jobcomp.log"
        jobs: dict[str, dict[str, str]] = {}
        if log.exists():
            for line in log.read_text().splitlines():
                fields = dict(re.findall(r"(\w+)=(\S*)", line))
                if "JobId" in fields:
                    jobs[fields["JobId"]] = fields
        return jobs

    def down(self) -> float:
        """Stop the daemons (cancelling any job first); returns the seconds it took."""
        proc = subprocess.run(
            [str(HERE / "slurm_down.sh"), str(self.state_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        self.timings.update(_timings(proc.stderr))
        if proc.returncode != 0:
            raise RuntimeError(f"slurm_down.sh failed ({proc.returncode}):\n{proc.stderr}")
        return self.timings.get("stop_s", float("nan"))


def _timings(text: str) -> dict[str, float]:
    return {key: float(value) for key, value in re.findall(r"TIMING (\w+)=([\d.]+)", text)}


def slurm_up(
    state_dir: Path, *, fake_gpus: int | None = None, timeout: float = 900
) -> SlurmCluster:
    """Bring up the test cluster (installing Slurm with apt-get if needed).

    `fake_gpus`: pretend GPUs on the node, 1 or 0 (none: sbatch then refuses GPU requests);
    default: $ENGINEBENCH_SLURM_FAKE_GPUS, else 1.
    Raises SlurmUnavailable when this host cannot run it or the daemons do not come up.
    """
    if fake_gpus is None:
        fake_gpus = int(os.environ.get("ENGINEBENCH_SLURM_FAKE_GPUS", "1"))
    env = dict(os.environ, ENGINEBENCH_SLURM_FAKE_GPUS=str(fake_gpus))
    env.pop("SLURM_CONF", None)
    try:
        proc = subprocess.run(
            [str(HERE / "slurm_up.sh"), str(state_dir)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        subprocess.run([str(HERE / "slurm_down.sh"), str(state_dir)], check=False)
        raise SlurmUnavailable(f"slurm_up.sh did not finish in {timeout} s") from exc
    if proc.returncode == CANNOT_RUN:
        lines = [line for line in proc.stderr.splitlines() if "CANNOT RUN HERE" in line]
        raise SlurmUnavailable(lines[-1] if lines else proc.stderr.strip())
    if proc.returncode != 0:
        raise SlurmUnavailable(
            f"slurm_up.sh failed with status {proc.returncode}:\n{proc.stderr[-4000:]}"
        )
    cluster = SlurmCluster(state_dir=Path(state_dir), cpus=0, mem_mb=0, gpus=fake_gpus)
    cluster.timings = _timings(proc.stderr)
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%c %m"],
        capture_output=True,
        text=True,
        env=cluster.env(),
        check=True,
    ).stdout.split()
    cluster.cpus, cluster.mem_mb = int(out[0]), int(out[1])
    return cluster


def derive_test_profile(
    cluster: SlurmCluster,
    dest: Path,
    source: Path = PROFILES / "slurm",
    *,
    set_values: Mapping[str, object] | None = None,
    gpu_rules: Iterable[str] = ("serve_sweep",),
) -> Path:
    """Copy the profile `source` to `dest`, fitted to the test cluster, the way a site adapts it:

    * every slurm_partition -> the test partition; slurm_account, qos, constraint, gpu_model and
      slurm_extra are dropped (the test cluster has none of them);
    * cores, cpus_per_task and threads are capped at the node's CPUs, mem_mb at half its memory
      (two jobs fit at once), gpu at the node's (fake) GPUs; on a node without GPUs the rules in
      `gpu_rules` (which ask for their GPUs themselves) are told gpu=0, or sbatch would refuse them;
    * the first status check comes after 2 s instead of 40 s (short jobs; MinJobAge is 600 s);
    * `set_values` then sets or replaces top-level keys (None removes a key).
    Returns `dest`, ready for `--profile`.
    """
    profile = yaml.safe_load((Path(source) / "config.yaml").read_text())
    mem_cap = cluster.mem_mb // 2

    def fit(resources: dict[str, object]) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in resources.items():
            if key in ("slurm_account", "qos", "constraint", "gpu_model", "slurm_extra"):
                continue
            if key == "slurm_partition":
                value = cluster.partition
            elif key == "mem_mb" and isinstance(value, int):
                value = min(value, mem_cap)
            elif key == "cpus_per_task":
                value = (
                    min(value, cluster.cpus)
                    if isinstance(value, int)
                    else f"min({value}, {cluster.cpus})"
                )
            elif key == "gpu" and isinstance(value, int):
                value = min(value, cluster.gpus)
            out[key] = value
        return out

    if "default-resources" in profile:
        profile["default-resources"] = fit(profile["default-resources"])
    for rule, resources in (profile.get("set-resources") or {}).items():
        profile["set-resources"][rule] = fit(resources)
    for rule, threads in (profile.get("set-threads") or {}).items():
        profile["set-threads"][rule] = min(int(threads), cluster.cpus)
    if cluster.gpus == 0:
        for rule in gpu_rules:
            profile.setdefault("set-resources", {}).setdefault(rule, {})["gpu"] = 0
    if "cores" in profile:
        profile["cores"] = min(int(profile["cores"]), cluster.cpus)
    profile.pop("slurm-qos", None)
    profile.pop("slurm-reservation", None)
    profile["slurm-init-seconds-before-status-checks"] = 2
    for key, value in (set_values or {}).items():
        if value is None:
            profile.pop(key, None)
        else:
            profile[key] = value
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def run_workflow_with_profile(
    workdir: Path | str,
    profile: Path | str,
    configfile: Path | str | None = None,
    targets: Iterable[str] = (),
    extra_args: Sequence[str] = (),
    *,
    snakefile: Path | str | None = WORKFLOW_SNAKEFILE,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `snakemake --profile PROFILE` in `workdir` (its working directory) and return the
    finished process (stdout and stderr captured as text; the caller checks returncode).

    `snakefile` defaults to enginebench's Snakefile (None: Snakemake's own search from `workdir`);
    `env` defaults to this process's environment (for the test cluster give `cluster.env()`, which
    points SLURM_CONF at it). Snakemake is this interpreter's (`python -m snakemake`).
    """
    cmd = [sys.executable, "-m", "snakemake", "--profile", str(Path(profile).resolve())]
    if snakefile is not None:
        cmd += ["--snakefile", str(Path(snakefile).resolve())]
    if configfile is not None:
        cmd += ["--configfile", str(Path(configfile).resolve())]
    cmd += [*extra_args, *targets]
    return subprocess.run(
        cmd,
        cwd=workdir,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def submitted_slurm_jobs(output: str) -> dict[str, str]:
    """Snakemake job id -> Slurm job id, from the plugin's "Job N has been submitted with SLURM
    jobid M" lines in a run's output."""
    return dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))


def slurm_run_id(output: str) -> str | None:
    """The run's Slurm job name (the plugin's "SLURM run ID: <uuid>")."""
    match = re.search(r"SLURM run ID: (\S+)", output)
    return match.group(1) if match else None
