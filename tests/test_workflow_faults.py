"""Faults: an engine that never becomes healthy fails its own job (with its log tail in the
error) while the others go on; neither a failed nor an interrupted run leaves a server, and what
they measured is kept aside while the next run redoes them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_workflow_small import small_config
from tests.workflow.plan import (
    REPO,
    our_processes,
    planned_jobs,
    run_workflow,
    scratch_workdir,
    write_config,
)

pytestmark = pytest.mark.engines


def _llamacpp_only() -> dict:
    cfg = small_config()
    cfg["models"].pop("tiny-hf")
    cfg["benchmarks"] = [b for b in cfg["benchmarks"] if b["model"] == "tiny-llama"]
    return cfg


def test_broken_engine_fails_alone_and_leaves_nothing(tmp_path: Path) -> None:
    cfg = _llamacpp_only()
    cfg["engines"]["llamacpp"]["server_args"] = ["--no-such-llama-flag"]
    cfg["engines"]["transformers"] = {"env_file": "envs/transformers.yaml"}
    cfg["benchmarks"].append(
        {"engine": "transformers", "model": "tiny-llama", "quants": ["hf"], "fidelity": False}
    )
    work = scratch_workdir(tmp_path)
    proc = run_workflow(work, write_config(work / "c.yaml", cfg), timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # the failed job says why, with the server's own words
    assert "serve_sweep llamacpp/tiny-llama/f16/default failed" in out
    assert "no-such-llama-flag" in out
    # keep-going: the other engine's sweep and table were still made
    assert (work / "results/transformers/tiny-llama/hf/default/table.csv").is_file()
    run = work / "results/llamacpp/tiny-llama/f16/default"
    assert not (run / "table.csv").exists()
    assert our_processes(work) == []
    # what the failed job made is set aside, so the next run redoes it (and only it)
    assert not (run / "server.json").exists() and not (run / "points").exists()
    (kept,) = (run / "failed").iterdir()
    assert "no-such-llama-flag" in json.loads((kept / "server.json").read_text())["error"]
    jobs = planned_jobs(work, work / "c.yaml")
    assert jobs["serve_sweep"] == 1 and jobs["engine_table"] == 1


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm-to-snakemake"])
def test_interrupted_run_leaves_no_server_keeps_finished_points(tmp_path: Path, how: str) -> None:
    """Ctrl-C in a terminal (SIGINT to the whole process group), or SIGTERM to Snakemake alone
    (as `kill`, a scheduler or a cancelled CI job sends it: Snakemake by itself would wait for
    the running job to finish its sweep, minutes here): the run stops within seconds."""
    cfg = _llamacpp_only()
    # a short rate point, then a closed-loop point far too long to wait for (~3 min)
    cfg["sweeps"]["default"].update(
        request_rates=[4], num_prompts=6, concurrency=[1], concurrency_num_prompts=2000
    )
    work = scratch_workdir(tmp_path)
    configfile = write_config(work / "c.yaml", cfg)
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--profile", str(REPO / "profiles" / "local"), "--configfile", str(configfile),
    ]  # fmt: skip
    snake = subprocess.Popen(
        cmd, cwd=work, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    sweep_log = work / "logs/serve/llamacpp/tiny-llama/f16/default.log"
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            if sweep_log.is_file() and "conc-1:" in sweep_log.read_text(errors="replace"):
                break
            assert snake.poll() is None, "the run ended before the sweep started"
            time.sleep(1)
        else:
            pytest.fail("the sweep never started")
        assert any("llama-server" in p for p in our_processes(work))
        stop = time.monotonic()
        if how == "ctrl-c":
            os.killpg(snake.pid, signal.SIGINT)
        else:
            os.kill(snake.pid, signal.SIGTERM)
        snake.wait(timeout=120)
        assert time.monotonic() - stop < 45
    finally:
        if snake.poll() is None:
            os.killpg(snake.pid, signal.SIGKILL)
    time.sleep(2)
    assert our_processes(work) == []
    # the point completed before Ctrl-C is kept, whole, set aside under failed/<time>/; the next
    # run redoes the sweep (no "incomplete files" stop)
    run = work / "results/llamacpp/tiny-llama/f16/default"
    (kept,) = (run / "failed").iterdir()
    done = kept / "points" / "rate-4.json"
    assert json.loads(done.read_text())["completed"] == 6
    assert len(done.with_suffix(".jsonl").read_text().splitlines()) == 6
    assert not (run / "points").exists()
    assert planned_jobs(work, configfile)["serve_sweep"] == 1
