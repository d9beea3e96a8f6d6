"""The execution profiles (profiles/local, profiles/slurm) on a toy workflow; the Slurm one
through a real single-node Slurm that the session brings up and takes down (tests/slurm/).

The Slurm tests need root (they install Debian's slurm-wlm and munge with apt-get when missing and
start the daemons) and snakemake-executor-plugin-slurm (`pip install -e '.[slurm]'`). Where that is
not possible they are skipped, with the reason; with ENGINEBENCH_REQUIRE_SLURM=1 (CI) they fail
instead. Deselect them with `-m "not slurm"`.

For further tests through Slurm: request the `slurm_cluster` fixture (a running
tests.slurm.harness.SlurmCluster), fit a profile to it with `derive_test_profile`, and run
Snakemake with `run_workflow_with_profile(..., env=slurm_cluster.env())`; see
tests/slurm/harness.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from tests.slurm.harness import (
    PROFILES,
    TOY_SNAKEFILE,
    SlurmCluster,
    SlurmUnavailable,
    derive_test_profile,
    run_workflow_with_profile,
    slurm_run_id,
    slurm_up,
    submitted_slurm_jobs,
)

REQUIRE_SLURM = os.environ.get("ENGINEBENCH_REQUIRE_SLURM") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE_SLURM:
        pytest.fail(f"{reason} (ENGINEBENCH_REQUIRE_SLURM=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A running single-node Slurm for the whole session (partition `debug`, one pretend GPU, or
    none with ENGINEBENCH_SLURM_FAKE_GPUS=0), stopped at the end of the session with every job it
    still has."""
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        _unavailable("snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
    state = Path(os.environ.get("ENGINEBENCH_SLURM_DIR") or tmp_path_factory.mktemp("slurm"))
    try:
        cluster = slurm_up(state)
    except SlurmUnavailable as exc:
        _unavailable(f"no test Slurm cluster: {exc}")
    print(f"\nslurm test cluster up: {cluster.timings} (state and logs: {state})")
    yield cluster
    stop_s = cluster.down()
    print(f"\nslurm test cluster down in {stop_s} s")


def _records(summary: Path) -> list[dict]:
    """The toy's job records: summarize's own, then every record among its inputs."""
    out, todo = [], [json.loads(summary.read_text())]
    while todo:
        record = todo.pop()
        out.append(record)
        todo.extend(record.get("inputs", []))
    return out


def _expected_request(profile: dict, rule: str, threads: int) -> tuple[int, int]:
    """(mem_mb, cpus) that `profile` asks Slurm for, for a job of `rule` that ran with `threads`."""
    resources = {**profile["default-resources"], **profile.get("set-resources", {}).get(rule, {})}
    cpus = resources["cpus_per_task"]
    if isinstance(cpus, str):  # an expression of `threads`, such as min(threads, 2)
        cpus = eval(cpus, {"min": min, "max": max}, {"threads": threads})
    return int(resources["mem_mb"]), int(cpus)


@pytest.mark.slurm
def test_toy_workflow_runs_as_slurm_jobs(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    profile_dir = derive_test_profile(slurm_cluster, tmp_path / "profile")
    profile = yaml.safe_load((profile_dir / "config.yaml").read_text())
    run = tmp_path / "run"
    run.mkdir()

    t0 = time.monotonic()
    proc = run_workflow_with_profile(
        run, profile_dir, snakefile=TOY_SNAKEFILE, env=slurm_cluster.env(), timeout=600
    )
    print(f"\ntoy workflow through Slurm: {time.monotonic() - t0:.1f} s")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]

    # Snakemake submitted each of the 5 jobs with sbatch ...
    submitted = submitted_slurm_jobs(proc.stderr)
    assert len(submitted) == 5, proc.stderr[-6000:]
    run_id = slurm_run_id(proc.stderr)
    assert run_id

    # ... each job ran inside its own Slurm allocation, in a job step (srun) ...
    records = _records(run / "results" / "summary.json")
    assert sorted(r["rule"] for r in records) == sorted(
        ["summarize", "serve_sweep", "serve_sweep", "engine_env", "engine_env"]
    )
    job_ids = [r["env"]["SLURM_JOB_ID"] for r in records]
    assert sorted(job_ids) == sorted(submitted.values())
    assert all(r["env"]["SLURM_STEP_ID"] == "0" for r in records)
    assert all(r["env"]["SLURM_JOB_PARTITION"] == slurm_cluster.partition for r in records)

    # ... and slurmctld itself recorded each as a completed job of this run, on this node ...
    finished = slurm_cluster.finished_jobs()
    for record in records:
        job = finished[record["env"]["SLURM_JOB_ID"]]
        assert job["JobState"] == "COMPLETED", job
        assert job["Name"] == run_id
        assert job["Partition"] == slurm_cluster.partition
        assert job["NodeList"] == record["host"]

        # ... with the memory, CPUs and GPUs that the profile asks for, rule by rule.
        mem_mb, cpus = _expected_request(profile, record["rule"], record["threads"])
        assert f"mem={mem_mb}M" in job["Tres"], (record["rule"], job["Tres"])
        assert f"cpu={cpus}," in job["Tres"], (record["rule"], job["Tres"])
        assert record["env"]["SLURM_CPUS_PER_TASK"] == str(cpus)
        # GPUs: as the rule declares them (the toy's "alpha" engine uses one, "beta" none).
        wants_gpu = record["output"] == "results/alpha/sweep.json" and slurm_cluster.gpus > 0
        assert (record["env"]["CUDA_VISIBLE_DEVICES"] is not None) == wants_gpu, record

    # engine_env got the profile's extra threads; serve_sweep (threads: workflow.cores) `cores`.
    threads = {r["rule"]: r["threads"] for r in records}
    assert threads["engine_env"] == min(profile["set-threads"]["engine_env"], profile["cores"])
    assert threads["serve_sweep"] == profile["cores"]

    # The plugin's Slurm logs are kept (slurm-keep-successful-logs) under slurm-logdir.
    slurm_logs = sorted((run / profile["slurm-logdir"]).rglob("*.log"))
    assert {p.stem for p in slurm_logs} == set(submitted.values())


def test_toy_workflow_local_profile(tmp_path: Path) -> None:
    """profiles/local runs the same toy on this machine, outside Slurm."""
    run = tmp_path / "run"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = run_workflow_with_profile(
        run, PROFILES / "local", snakefile=TOY_SNAKEFILE, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    records = _records(run / "results" / "summary.json")
    assert len(records) == 5
    assert sorted(r["rule"] for r in records) == sorted(
        ["summarize", "serve_sweep", "serve_sweep", "engine_env", "engine_env"]
    )
    assert all(r["env"]["SLURM_JOB_ID"] is None for r in records)


# ---- a real enginebench sweep through the Slurm profile --------------------------------------
def _sweep_config() -> dict:
    from tests.test_workflow_small import small_config

    cfg = small_config()
    cfg["models"].pop("tiny-hf")  # the hub-cache model is the small test's business
    cfg["benchmarks"] = [b for b in cfg["benchmarks"] if b["model"] == "tiny-llama"]
    return cfg


def _shape(work: Path) -> dict[str, object]:
    """What a run produced, without the numbers: files, table columns and rows, summary keys."""
    import pandas as pd

    results = work / "results"
    files = sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file())
    tables = {
        str(p.relative_to(results)): (list(pd.read_csv(p).columns), len(pd.read_csv(p)))
        for p in sorted(results.glob("*/*/*/*/table.csv"))
    }
    summary = json.loads(next(results.glob("*/*/*/*/points/rate-*.json")).read_text())
    return {"files": files, "tables": tables, "summary_keys": sorted(summary)}


@pytest.mark.engines
def test_real_sweep_through_slurm_matches_local(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    from tests.workflow.plan import run_workflow, scratch_workdir, write_config

    cfg = _sweep_config()
    local = scratch_workdir(tmp_path / "local")
    proc = run_workflow(local, write_config(local / "c.yaml", cfg))
    assert proc.returncode == 0, proc.stderr[-5000:]

    cluster_work = scratch_workdir(tmp_path / "slurm")
    profile = derive_test_profile(slurm_cluster, tmp_path / "profile")
    proc = run_workflow_with_profile(
        cluster_work,
        profile,
        write_config(cluster_work / "c.yaml", cfg),
        env=slurm_cluster.env(),
        timeout=1800,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    submitted = submitted_slurm_jobs(proc.stdout + proc.stderr)
    assert submitted, "no job went through Slurm"
    # the server and its load generator ran inside one Slurm job
    server = json.loads(
        (cluster_work / "results/llamacpp/tiny-llama/f16/default/server.json").read_text()
    )
    assert server["points"] and all(p["returncode"] == 0 for p in server["points"])
    assert _shape(cluster_work) == _shape(local)
