"""The DAG: every engine's rules are planned, job counts are right, bad config stops early."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from tests.workflow.plan import REPO, default_config, planned_jobs, snakemake, write_config


def test_default_config_plans_every_engine(tmp_path: Path) -> None:
    cfg = default_config()
    jobs = planned_jobs(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    combos = sum(len(b["quants"]) * len(b["sweeps"]) for b in cfg["benchmarks"])
    assert jobs["serve_sweep"] == combos == 12  # 6 engine x quant, each a load and a decode sweep
    assert jobs["engine_table"] == combos
    assert jobs["synthesize_model"] == 1
    assert jobs["llamacpp_source"] == 1 and jobs["build_llamacpp"] == 1
    assert jobs["convert_gguf"] == 1  # f16 only; Q4_K_M is quantized from it
    assert jobs["quantize_gguf"] == 1
    assert jobs["engine_env"] == 3  # vllm, transformers, and MLC's (its compiler)
    assert jobs["mlc_source"] == 1 and jobs["build_mlc"] == 1
    assert jobs["prepare_model"] == 3 * 2  # convert_weight, gen_config, compile x q0f32, q4f32_1
    # the random workload, the decode's fixed one, and fidelity's first 16 random prompts
    assert jobs["materialize_prompts"] == 3
    # fidelity: each engine x quant on a server of its own, scored against the reference
    assert jobs["fidelity_collect"] == jobs["fidelity_score"] == 6
    assert jobs["fidelity_table"] == 1
    # llama.cpp's own full-vocabulary KL of Q4_K_M against the f16, with the tool it needs
    assert jobs["llama_tool"] == 1 and jobs["llama_kld"] == 1
    assert jobs["comparison"] == 1 and jobs["manifest"] == 1 and jobs["plots"] == 1
    assert jobs["capacity"] == 1 and jobs["results_table"] == 1
    # the decode table, llama-bench beside each llama.cpp quant, the machine's bandwidth
    assert jobs["decode_table"] == 1 and jobs["llama_bench"] == 2
    assert jobs["memory_bandwidth"] == 2  # before and after the sweeps


LARGE = {
    "models": {
        "tiny": {"source": "synthetic", "preset": "tiny-llama"},
        "l2": {"source": "synthetic", "preset": "llama-2-7b", "dtype": "float16"},
        "hfm": {"source": "hf", "repo": "org/model", "revision": "0" * 40},
        "ggml": {
            "source": "gguf",
            "repo": "TheBloke/Llama-2-7B-GGML",
            "filename": "llama-2-7b.ggmlv3.q4_K_M.bin",
            "revision": "1" * 40,
            "tokenizer": "org/model",
        },
    },
    "engines": {
        "llamacpp": {"version": "0.3.36", "backend": "cuda"},
        "vllm": {"env_file": "envs/vllm-cpu.yaml"},
        "transformers": {"env_file": "envs/transformers.yaml"},
        "sglang": {"env_file": "envs/sglang.yaml"},
        "lmdeploy": {"env_file": "envs/lmdeploy.yaml"},
        "mlc": {"env_file": "envs/mlc-llm.yaml"},
        "trtllm": {"env_file": "envs/tensorrt-llm.yaml", "source_dir": "/opt/TensorRT-LLM"},
        "tgi": {},
        "exllamav2": {"env_file": "envs/exllamav2.yaml"},
        "openai": {"base_url": "http://127.0.0.1:9999", "api_key_env": "OPENAI_API_KEY"},
    },
    "benchmarks": [
        {"engine": "llamacpp", "model": "tiny", "quants": ["f16", "Q8_0", "Q4_K_M"]},
        {"engine": "llamacpp", "model": "l2", "quants": ["Q4_K_M"]},
        {"engine": "llamacpp", "model": "ggml", "quants": ["file"]},
        {"engine": "vllm", "model": "hfm", "quants": ["hf"]},
        {"engine": "sglang", "model": "l2", "quants": ["hf"]},
        {"engine": "lmdeploy", "model": "l2", "quants": ["hf"]},
        {"engine": "mlc", "model": "l2", "quants": ["q4f16_1"]},
        {"engine": "trtllm", "model": "l2", "quants": ["fp16", "int4_wo"]},
        {"engine": "tgi", "model": "l2", "quants": ["hf"]},
        {"engine": "exllamav2", "model": "l2", "quants": ["4.0bpw"]},
        {"engine": "transformers", "model": "tiny", "quants": ["hf"]},
        {"engine": "openai", "model": "tiny", "quants": ["hf"]},
    ],
    "sweeps": {
        "default": {"request_rates": [1, 2, 5, 8, "inf"], "concurrency": [1, 4, 16]},
        "long": {"request_rates": [1], "concurrency": [], "num_prompts": 500},
    },
}
LARGE["benchmarks"][0]["sweeps"] = ["default", "long"]  # tiny f16, Q8_0, Q4_K_M: 3 more runs


def test_large_config_job_counts(tmp_path: Path) -> None:
    cfg = copy.deepcopy(LARGE)
    jobs = planned_jobs(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    combos = sum(len(b["quants"]) for b in cfg["benchmarks"])
    assert jobs["serve_sweep"] == combos + 3
    assert jobs["engine_table"] == combos + 3
    assert jobs["synthesize_model"] == 2
    assert jobs["fetch_hf_model"] == 1
    assert jobs["fetch_gguf_model"] == 1 and jobs["ggml_to_gguf"] == 1
    assert jobs["fetch_tokenizer"] == 1
    assert jobs["convert_gguf"] == 2  # tiny and l2 f16
    assert jobs["quantize_gguf"] == 3  # tiny Q8_0, Q4_K_M; l2 Q4_K_M
    assert jobs["plots"] == 4  # one per benchmarked model
    # one prompt file per model and count (warm-ups + every point's own rows): 372 for every
    # model, 504 for the `long` sweep of tiny
    assert jobs["materialize_prompts"] == 4 + 1 + 3  # + fidelity's 16, of each HF model
    # fidelity for every engine x quant of a model with HF weights (not the GGML file's)
    assert jobs["fidelity_collect"] == jobs["fidelity_score"] == combos - 1
    # MLC: 3 steps; TensorRT-LLM: 2 steps x 2 quants; EXL2: 1 step
    assert jobs["prepare_model"] == 3 + 4 + 1
    # venv engines that are configured and used: vllm, sglang, lmdeploy, mlc, trtllm,
    # exllamav2, transformers (tgi is a pinned container image; openai a running endpoint)
    assert jobs["engine_env"] == 7
    # MLC-LLM from its pinned source archive: unpacked once, built once (with its env's python)
    assert jobs["mlc_source"] == 1 and jobs["build_mlc"] == 1
    # TabbyAPI's checkout (exllamav2's config names none); TensorRT-LLM's is the config's
    assert jobs["engine_source"] == 1


def planned_inputs(workdir: Path, configfile: Path) -> list[tuple[str, str, list[str]]]:
    """(rule, wildcards, inputs) of every job a dry run plans."""
    proc = snakemake(workdir, "-n", "--configfile", str(configfile))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs: list[tuple[str, str, list[str]]] = []
    for line in (proc.stdout + proc.stderr).splitlines():
        if m := re.fullmatch(r"(?:local)?rule (\w+):", line):
            jobs.append((m.group(1), "", []))
        elif jobs and line.startswith("    input: "):
            jobs[-1][2].extend(line.removeprefix("    input: ").split(", "))
        elif jobs and line.startswith("    wildcards: "):
            jobs[-1] = (jobs[-1][0], line.removeprefix("    wildcards: "), jobs[-1][2])
    return jobs


def _fed_by(jobs: list[tuple[str, str, list[str]]], path: str) -> list[tuple[str, str]]:
    return sorted((rule, wc) for rule, wc, inputs in jobs if path in inputs)


TRT_SRC = "resources/engines/trtllm/src-v1.2.1"
TABBY_SRC = "resources/engines/exllamav2/src-01a5915a7bfd"


def test_engine_sources_are_fetched_and_feed_their_jobs(tmp_path: Path) -> None:
    """No source_dir: each engine's pinned checkout is one fetch job, an input of the jobs that
    run code from it (TensorRT-LLM's convert_checkpoint, TabbyAPI's server) and of the engine's
    serve jobs and fidelity's (whose provenance records its commit); not of the other
    preparation steps."""
    cfg = copy.deepcopy(LARGE)
    del cfg["engines"]["trtllm"]["source_dir"]
    jobs = planned_inputs(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    fetches = sorted(wc for rule, wc, _ in jobs if rule == "engine_source")
    assert fetches == ["engine=exllamav2, label=01a5915a7bfd", "engine=trtllm, label=v1.2.1"]
    assert sorted(_fed_by(jobs, TRT_SRC)) == sorted(
        [("prepare_model", f"engine=trtllm, model=l2, quant={q}, step=convert_checkpoint")
         for q in ("fp16", "int4_wo")]
        + [("serve_sweep", f"engine=trtllm, model=l2, quant={q}, sweep=default")
           for q in ("fp16", "int4_wo")]
        + [("fidelity_collect", f"engine=trtllm, model=l2, quant={q}")
           for q in ("fp16", "int4_wo")]
    )  # fmt: skip
    assert _fed_by(jobs, TABBY_SRC) == [
        ("fidelity_collect", "engine=exllamav2, model=l2, quant=4.0bpw"),
        ("serve_sweep", "engine=exllamav2, model=l2, quant=4.0bpw, sweep=default"),
    ]


def test_source_ref_override_and_source_dir(tmp_path: Path) -> None:
    """`source_ref` names another checkout (its own folder); `source_dir` fetches nothing."""
    cfg = copy.deepcopy(LARGE)
    trt = cfg["engines"]["trtllm"]
    del trt["source_dir"]
    trt.update(source_url="https://example.org/TensorRT-LLM.git", source_ref="release/1.3")
    cfg["engines"]["exllamav2"]["source_dir"] = "/opt/tabbyAPI"
    jobs = planned_inputs(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    assert [wc for rule, wc, _ in jobs if rule == "engine_source"] == [
        "engine=trtllm, label=release_1.3"
    ]
    # convert, serve, fidelity's server
    assert len(_fed_by(jobs, "resources/engines/trtllm/src-release_1.3")) == 2 + 2 + 2
    cfg = copy.deepcopy(LARGE)
    cfg["engines"]["exllamav2"]["source_dir"] = "/opt/tabbyAPI"
    jobs = planned_inputs(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    assert not [rule for rule, _, _ in jobs if rule == "engine_source"]
    assert not [
        i for _, _, inputs in jobs for i in inputs if "/src-" in i and "llamacpp" not in i
        and "/mlc/" not in i  # MLC's unpacked archive, not a checkout
    ]  # fmt: skip


EXL2 = {"env_file": "envs/exllamav2.yaml"}
BAD = [
    (
        lambda c: c["benchmarks"][0].update(engine="nosuch"),
        "'nosuch' has no entry under `engines:`",
    ),
    (lambda c: c["models"]["tiny-llama"].pop("preset"), "preset"),
    (lambda c: c["sweeps"]["default"].update(request_rates=[1, 0]), "request_rates"),
    (lambda c: c["benchmarks"][0].update(sweeps=["nosweep"]), "'nosweep' is not defined"),
    (lambda c: c["sweeps"]["default"].update(request_rates=[], concurrency=[]), "no points"),
    (lambda c: c["sweeps"]["default"].update(request_rates=[1, 1.0]), "rate-1 is listed twice"),
    (lambda c: c["benchmarks"].append(dict(c["benchmarks"][1])), "listed twice"),
    (lambda c: c.update(sweep={"request_rates": [1]}), "`sweep:` is now `sweeps:`"),
    (lambda c: c["benchmarks"][0].update(quants=["Q9_X"]), "unknown quantization 'Q9_X'"),
    (lambda c: c["benchmarks"][0].update(model="nomodel"), "'nomodel' is not defined"),
    (lambda c: c["engines"]["vllm"].update(env_file="envs/missing.yaml"), "envs/missing.yaml"),
    (lambda c: c["engines"]["vllm"].update(source_ref="v1"), "vllm runs no code from a git"),
    (
        lambda c: c["engines"].update(exllamav2={**EXL2, "source_ref": "--upload-pack=x"}),
        "engines.exllamav2.source_ref: '--upload-pack=x' is not a git tag",
    ),
    (
        lambda c: c["engines"].update(exllamav2={**EXL2, "source_ref": "v1", "source_dir": "/s"}),
        "give either source_dir (your checkout) or source_ref",
    ),
    (lambda c: c["sweeps"]["decode"].update(concurrency=[1, 4]), "a decode sweep is one user"),
    (
        lambda c: c["sweeps"]["default"].update(search={"low": 1, "high": 8, "probes": 4}),
        "search probes request rates itself; set request_rates: []",
    ),
    (
        lambda c: c["sweeps"]["default"].update(
            request_rates=[], slo=None, search={"low": 1, "high": 8, "probes": 4}
        ),
        "slo",
    ),
    (
        lambda c: c["sweeps"]["decode"]["workload"].update(name="random-128-128"),
        "'random-128-128' names two different workloads",
    ),
    (lambda c: c["sweeps"]["default"].update(repeats=0), "repeats"),
    (
        lambda c: c["workload"].update(prefix_groups=4),
        "workload.prefix_groups: 4 groups of no prefix; set prefix_len",
    ),
    (lambda c: c["workload"].update(prefix_order="shuffled"), "prefix_order"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD)
def test_bad_config_stops_before_any_job(tmp_path: Path, mutate, message: str) -> None:
    cfg = default_config()
    mutate(cfg)
    proc = snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path / "c.yaml", cfg)))
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


def test_lint_clean(tmp_path: Path) -> None:
    proc = snakemake(REPO, "--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_sweep_added_to_one_benchmark(tmp_path: Path) -> None:
    """A second named sweep on vLLM only: one more serve job and table, and a prompt file of its
    own size (4 warm-ups + 64: every point gets fresh rows); the default sweep's is untouched."""
    cfg = default_config()
    cfg["sweeps"]["extra"] = {"request_rates": [3], "concurrency": []}
    cfg["benchmarks"][1]["sweeps"] = ["default", "decode", "extra"]  # vllm
    jobs = planned_jobs(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    assert jobs["serve_sweep"] == 13 and jobs["engine_table"] == 13
    # random (default, extra), the decode's and fidelity's
    assert jobs["materialize_prompts"] == 4


def test_completed_only_plans_the_aggregates_of_what_completed(tmp_path: Path) -> None:
    """A run cut short (one of 8 tables there): `--config completed_only=True` plans that run's
    aggregates only, and says which runs it leaves out; none at all is a one-line error."""
    configfile = write_config(tmp_path / "c.yaml", default_config())
    proc = snakemake(
        tmp_path, "-n", "--configfile", str(configfile), "--config", "completed_only=True"
    )
    assert proc.returncode != 0
    assert "completed_only: no run has completed yet" in proc.stdout + proc.stderr
    done = tmp_path / "results/vllm/tiny-llama/hf/default"
    done.mkdir(parents=True)
    (done / "table.csv").touch()
    jobs = planned_jobs(tmp_path, configfile, "--config", "completed_only=True")
    assert jobs["serve_sweep"] == 1 and jobs["build_llamacpp"] == 0  # its table is older
    assert jobs["manifest"] == 1 and jobs["results_table"] == 1
    proc = snakemake(
        tmp_path, "-n", "--configfile", str(configfile), "--config", "completed_only=True"
    )
    assert (
        "left out, not completed: results/llamacpp/tiny-llama/f16/default"
        in proc.stdout + proc.stderr
    )


def _dry_outputs(tmp_path: Path, cfg: dict) -> str:
    proc = snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path / "c.yaml", cfg)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_instances_of_one_engine_have_their_own_jobs_builds_and_results(tmp_path: Path) -> None:
    """Two llama.cpp instances at two versions and two vLLM instances differing in one flag:
    each its own serve jobs and results folder, each llama.cpp its own source and build, the
    vLLM instances one environment (same file); an interpreter the config brings builds none."""
    cfg = default_config()
    cfg["engines"]["llama-old"] = {
        "kind": "llamacpp", "version": "0.3.35", "sha256": "0" * 64, "server_args": ["-np", "8"],
    }  # fmt: skip
    cfg["engines"]["vllm-seed"] = {
        **cfg["engines"]["vllm"], "kind": "vllm",
        "server_args": [*cfg["engines"]["vllm"]["server_args"], "--seed", "1"],
    }  # fmt: skip
    cfg["engines"]["hf-own"] = {"kind": "transformers", "python": "/opt/hf/bin/python"}
    # one server flag apart from llamacpp: its build, not one of its own
    cfg["engines"]["llama-nocram"] = {
        **cfg["engines"]["llamacpp"], "kind": "llamacpp", "server_args": ["--cache-ram", "0"],
    }  # fmt: skip
    cfg["benchmarks"] = [
        {"engine": e, "model": "tiny-llama", "quants": [q], "sweeps": ["decode"]}
        for e, q in [("llamacpp", "Q4_K_M"), ("llama-old", "Q4_K_M"), ("vllm", "hf"),
                     ("vllm-seed", "hf"), ("hf-own", "hf"), ("llama-nocram", "Q4_K_M")]
    ]  # fmt: skip
    jobs = planned_jobs(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    assert jobs["serve_sweep"] == 6 and jobs["engine_table"] == 6
    assert jobs["llamacpp_source"] == 2 and jobs["build_llamacpp"] == 2
    assert jobs["llama_bench"] == 3
    assert jobs["engine_env"] == 1  # vllm and vllm-seed share it; hf-own brings its own
    assert jobs["convert_gguf"] == 1 and jobs["quantize_gguf"] == 1  # one GGUF, served by both
    out = _dry_outputs(tmp_path, cfg)
    for path in (
        "resources/engines/llama-old/src-pypi-0.3.35",
        "resources/engines/llama-old/pypi-0.3.35-cpu/bin/build.json",
        "resources/engines/llamacpp/pypi-0.3.36-cpu/bin/build.json",
        "results/llama-old/tiny-llama/Q4_K_M/llama-bench.json",
        "results/vllm-seed/tiny-llama/hf/decode/server.json",
        "results/hf-own/tiny-llama/hf/decode/server.json",
        "results/llama-nocram/tiny-llama/Q4_K_M/decode/server.json",
    ):
        assert path in out, path
    assert "resources/envs/transformers-" not in out and "resources/engines/llama-nocram" not in out


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "nosuch"}, "engines.x: unknown kind 'nosuch'"),
        ({"kind": "llamacpp", "python": "/usr/bin/python3"}, "llamacpp is not a Python engine"),
        ({"kind": "vllm", "env_file": "envs/none.yaml"}, "engines.x.env_file: envs/none.yaml does"),
    ],
)
def test_bad_instance_stops_before_any_job(tmp_path: Path, entry: dict, message: str) -> None:
    cfg = default_config()
    cfg["engines"]["x"] = entry
    proc = snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path / "c.yaml", cfg)))
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


def test_prebuilt_llamacpp_binaries_are_served_as_they_are(tmp_path: Path) -> None:
    bin_dir = tmp_path / "prebuilt"
    bin_dir.mkdir()
    for name in ("llama-server", "llama-bench"):
        (bin_dir / name).write_text("#!/bin/sh\n")
    cfg = default_config()
    cfg["engines"]["llama-pre"] = {"kind": "llamacpp", "bin_dir": str(bin_dir)}
    cfg["benchmarks"] = [
        {"engine": "llama-pre", "model": "tiny-llama", "quants": ["Q4_K_M"], "sweeps": ["decode"]},
    ]
    jobs = planned_jobs(tmp_path, write_config(tmp_path / "c.yaml", cfg))
    # the GGUF still comes from the configured llamacpp's checkout and build (its converter and
    # llama-quantize); nothing is built for llama-pre itself
    assert jobs["serve_sweep"] == 1 and jobs["llama_bench"] == 1
    assert jobs["build_llamacpp"] == 1
    out = _dry_outputs(tmp_path, cfg)
    assert "resources/engines/llama-pre" not in out
    cfg["engines"]["llama-pre"]["bin_dir"] = str(tmp_path / "nothing")
    proc = snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path / "c.yaml", cfg)))
    assert (
        proc.returncode != 0 and "nothing/llama-server does not exist" in proc.stdout + proc.stderr
    )
