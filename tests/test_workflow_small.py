"""A small real run (llama.cpp, two models: synthetic and a Hugging Face repo resolved offline
through a hub cache), then what a model revision change makes Snakemake rerun."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.workflow.hubcache import add_snapshot
from tests.workflow.plan import (
    AGGREGATES,
    planned_jobs,
    run_workflow,
    scratch_workdir,
    write_config,
)

pytestmark = pytest.mark.engines

REPO_ID = "local-org/tiny-hf"
REV_A, REV_B = "a" * 40, "b" * 40


def small_config() -> dict:
    return {
        "models": {
            "tiny-llama": {"source": "synthetic", "preset": "tiny-llama"},
            "tiny-hf": {"source": "hf", "repo": REPO_ID, "revision": "main"},
        },
        "engines": {
            "llamacpp": {
                "version": "0.3.36",
                "sha256": "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
                "server_args": ["-np", "4", "-c", "2048"],
            }
        },
        "benchmarks": [
            # fidelity has tests of its own (test_workflow_e2e, test_fidelity_engines)
            {"engine": "llamacpp", "model": "tiny-llama", "quants": ["f16"], "fidelity": False},
            {"engine": "llamacpp", "model": "tiny-hf", "quants": ["f16"], "fidelity": False},
        ],
        "workload": {"input_len": 64, "output_len": 32},
        "sweeps": {
            "default": {
                "request_rates": [4],
                "num_prompts": 6,
                "concurrency": [2],
                "concurrency_num_prompts": 4,
                "warmups": 1,
            }
        },
    }


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, str]:
    """Two revisions of local-org/tiny-hf (the second with other weights); main -> the first."""
    cache = tmp_path_factory.mktemp("hub")
    add_snapshot(cache, REPO_ID, REV_A, tiny_model_dir, ref="main")
    other = tmp_path_factory.mktemp("rev-b") / "m"
    shutil.copytree(tiny_model_dir, other)
    (other / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "seed": "b"}))
    add_snapshot(cache, REPO_ID, REV_B, other)
    return {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, hub_env: dict[str, str]) -> dict:
    work = scratch_workdir(tmp_path_factory.mktemp("small"))
    cfg = small_config()
    configfile = write_config(work / "small.yaml", cfg)
    saved = {k: os.environ.get(k) for k in hub_env}
    os.environ.update(hub_env)
    try:
        proc = run_workflow(work, configfile)
        assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        yield {"work": work, "cfg": cfg}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_hf_revision_resolved_and_recorded(small_run: dict) -> None:
    source = json.loads((small_run["work"] / "resources/models/tiny-hf/source.json").read_text())
    assert source["commit"] == REV_A and source["revision"] == "main"
    meta = json.loads(
        (small_run["work"] / "results/llamacpp/tiny-hf/f16/default/points/rate-4.json").read_text()
    )["metadata"]
    assert meta["model_sha"] == REV_A


def test_model_revision_reruns_that_model_only(small_run: dict) -> None:
    cfg = copy.deepcopy(small_run["cfg"])
    cfg["models"]["tiny-hf"]["revision"] = REV_B
    work = small_run["work"]
    jobs = dict(planned_jobs(work, write_config(work / "rev.yaml", cfg)))
    assert jobs == {
        "fetch_hf_model": 1,
        "convert_gguf": 1,
        "materialize_prompts": 1,
        "serve_sweep": 1,
        "engine_table": 1,
        **AGGREGATES,
        # the plots render from the one tidy table: both models' redraw (seconds); every
        # measurement of the other model stays as it is
        "plots": 2,
    }
