"""The run plan without Snakemake: instances, runs, point names and paths of a config."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from enginebench.plan import ConfigError, Lock, Plan, Run, validate
from enginebench.points import parse_name, point_name, points_from_config
from tests.workflow.plan import REPO, default_config

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SHA_A, SHA_B = "a" * 40, "b" * 40


def plan_of(config: dict[str, Any], lock: Lock | None = None) -> Plan:
    """The plan of a config as the workflow makes it: the schema's defaults filled in first."""
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA))
    return Plan(config, lock, str(REPO))


def test_the_embedded_config() -> None:
    plan = plan_of(default_config())
    assert {n: (i.kind, i.software) for n, i in plan.instances.items()} == {
        "llamacpp": ("llamacpp", "build"),
        "vllm": ("vllm", "venv"),
        "transformers": ("transformers", "venv"),
        "mlc": ("mlc", "build"),
    }
    assert len(plan.runs) == 12 and plan.runs[0] == Run("llamacpp", "tiny-llama", "f16", "default")
    assert plan.sweeps["default"].point_names == [
        "rate-1", "rate-2", "rate-5", "rate-8", "conc-1", "conc-4",
    ]  # fmt: skip
    assert plan.sweeps["decode"].point_names == ["conc-1"]
    run = plan.runs[0]
    assert run.dir == "results/llamacpp/tiny-llama/f16/default"
    assert plan.serve_inputs(run) == {
        "model": "resources/models/tiny-llama/gguf/f16.gguf",
        "software": "resources/engines/llamacpp/pypi-0.3.36-cpu/bin/build.json",
        # 4 warm-ups, 4 rates x 64 prompts, 2 concurrencies x 16
        "prompts": "results/datasets/tiny-llama/random-128-128/292.jsonl",
        "tokenizer": "resources/models/tiny-llama/hf",
        "model_source": "resources/models/tiny-llama/source.json",
    }
    spec = plan.run_spec(run)
    names = [p.name for p in spec.points]
    assert names == plan.sweeps["default"].point_names
    assert spec.metadata["software_id"] == "pypi-0.3.36" and spec.kind == "llamacpp"
    # what the server loads, its binaries, and where the job writes: the plan's own paths
    assert spec.model == plan.serve_inputs(run)["model"] and spec.out_dir == f"{run.dir}/points"
    assert spec.bin_dir == "resources/engines/llamacpp/pypi-0.3.36-cpu/bin"
    assert spec.prompts_file == plan.serve_inputs(run)["prompts"]
    assert plan.summaries(run) == [f"{run.dir}/points/{p}.json" for p in names]

    # the job's parameter: builtins only (Snakemake's rerun trigger skips other types), and the
    # same value back in the job
    def builtins_only(v: object) -> bool:
        if isinstance(v, dict):
            return all(isinstance(k, str) and builtins_only(x) for k, x in v.items())
        if isinstance(v, list):
            return all(builtins_only(x) for x in v)
        return v is None or isinstance(v, (str, int, float))

    param = spec.as_param()
    assert builtins_only(param) and param["points"][0]["mode"] == "rate"
    assert type(spec).from_param(param) == spec
    vllm = plan.instances["vllm"]
    assert vllm.software_file == f"resources/envs/vllm-{vllm.env_key}/env.json"
    assert plan.gguf_tools.src == "resources/engines/llamacpp/src-pypi-0.3.36"
    assert plan.decode_sweeps == ["decode"] and plan.decode_models == ["tiny-llama"]
    assert plan.llama_bench_jsons == [
        "results/llamacpp/tiny-llama/Q4_K_M/llama-bench.json",
        "results/llamacpp/tiny-llama/f16/llama-bench.json",
    ]
    # comparison, capacity, results, decode, fidelity (+ its figure), plots, manifest (the
    # runs' tables come through it)
    assert len(plan.final_outputs) == 3 + 3 + 2 + 3 + 4 + 14 + 2
    assert plan.instance_differences == {}


def two_instances() -> dict[str, Any]:
    """Two llama.cpp instances at two commits (one a branch the lock file resolves), two vLLM
    instances differing in one flag."""
    cfg = default_config()
    cfg["engines"]["llamacpp"] = {"source": "git", "commit": SHA_A}
    cfg["engines"]["llama-new"] = {"kind": "llamacpp", "source": "git", "commit": "master"}
    vllm = cfg["engines"]["vllm"]
    cfg["engines"]["vllm-seed"] = {
        **vllm, "kind": "vllm", "server_args": [*vllm["server_args"], "--seed", "1"],
    }  # fmt: skip
    cfg["benchmarks"] = [
        {"engine": e, "model": "tiny-llama", "quants": [q], "sweeps": ["decode"]}
        for e, q in [("llamacpp", "Q4_K_M"), ("llama-new", "Q4_K_M"), ("vllm", "hf"),
                     ("vllm-seed", "hf")]
    ]  # fmt: skip
    return cfg


def test_two_instances_of_each_engine() -> None:
    url = "https://github.com/ggml-org/llama.cpp"
    plan = plan_of(two_instances(), Lock("c/enginebench.lock.yaml", {f"{url}@master": SHA_B}))
    old, new = plan.instances["llamacpp"], plan.instances["llama-new"]
    assert (old.tag, new.tag) == ("git-aaaaaaaaaaaa", "git-bbbbbbbbbbbb")
    assert new.src == "resources/engines/llama-new/src-git-bbbbbbbbbbbb"
    assert new.bin_dir == "resources/engines/llama-new/git-bbbbbbbbbbbb-cpu/bin"
    assert plan.gguf_tools is old  # one converter and quantizer for every instance's GGUF
    a, b = (plan.serve_inputs(r) for r in plan.runs[:2])
    assert a["model"] == b["model"] and a["software"] != b["software"]
    vllm, seed = plan.instances["vllm"], plan.instances["vllm-seed"]
    assert vllm.software_file == seed.software_file  # one environment, one env file
    assert [r.dir for r in plan.runs[2:]] == [
        "results/vllm/tiny-llama/hf/decode", "results/vllm-seed/tiny-llama/hf/decode",
    ]  # fmt: skip
    assert plan.instance_differences["vllm-seed"].startswith("server_args=")
    assert plan.instance_differences["llama-new"] == 'commit="master"'
    assert plan.llama_bench_jsons == [
        "results/llama-new/tiny-llama/Q4_K_M/llama-bench.json",
        "results/llamacpp/tiny-llama/Q4_K_M/llama-bench.json",
    ]


def test_a_branch_not_in_the_lock_file_is_one_line_with_the_fix() -> None:
    lock = Lock("c/enginebench.lock.yaml", {}, ("c/gpu.yaml",))
    with pytest.raises(ConfigError, match=r"not yet in c/enginebench.lock.yaml; resolve it once "
                       r"with `enginebench lock --configfile c/gpu.yaml`"):  # fmt: skip
        plan_of(two_instances(), lock)


def test_instances_that_build_the_same_llama_cpp_share_its_checkout_and_build() -> None:
    cfg = two_instances()
    # one server flag apart from llamacpp; then one build option apart
    cfg["engines"]["llama-nocram"] = {
        "kind": "llamacpp", "source": "git", "commit": SHA_A, "server_args": ["--cache-ram", "0"],
    }  # fmt: skip
    cfg["engines"]["llama-cuda"] = {"kind": "llamacpp", "source": "git", "commit": SHA_A,
                                    "backend": "cuda"}  # fmt: skip
    cfg["benchmarks"] += [
        {"engine": e, "model": "tiny-llama", "quants": ["Q4_K_M"], "sweeps": ["decode"]}
        for e in ("llama-nocram", "llama-cuda")
    ]
    url = "https://github.com/ggml-org/llama.cpp"
    plan = plan_of(cfg, Lock("c/enginebench.lock.yaml", {f"{url}@master": SHA_B}))
    old, nocram, cuda = (plan.instances[n] for n in ("llamacpp", "llama-nocram", "llama-cuda"))
    assert (nocram.src, nocram.bin_dir) == (old.src, old.bin_dir)
    assert nocram.software_file == old.software_file == f"{old.bin_dir}/build.json"
    assert old.bin_dir == "resources/engines/llamacpp/git-aaaaaaaaaaaa-cpu/bin"
    assert cuda.bin_dir == "resources/engines/llama-cuda/git-aaaaaaaaaaaa-cuda/bin"
    assert plan.instances["llama-new"].build_owner == "llama-new"


def test_software_the_user_brings_is_neither_built_nor_installed(tmp_path: Path) -> None:
    (tmp_path / "llama-server").touch()
    cfg = default_config()
    cfg["engines"] |= {
        "llama-pre": {"kind": "llamacpp", "bin_dir": str(tmp_path)},
        "hf-own": {"kind": "transformers", "python": "/opt/hf/bin/python"},
        "vllm-img": {"kind": "vllm", "container": {"image": "vllm/vllm:1", "runtime": "docker"}},
        "tgi": {},
    }
    cfg["benchmarks"] += [
        {"engine": "llama-pre", "model": "tiny-llama", "quants": ["Q4_K_M"]},
        {"engine": "vllm-img", "model": "tiny-llama", "quants": ["hf"]},
    ]
    plan = plan_of(cfg)
    byo = {n: plan.instances[n] for n in ("llama-pre", "hf-own", "vllm-img", "tgi")}
    assert {n: i.software for n, i in byo.items()} == {
        "llama-pre": "bin_dir", "hf-own": "python", "vllm-img": "container", "tgi": "container",
    }  # fmt: skip
    assert all(i.software_file is None for i in byo.values())
    assert [i.software_id for i in byo.values()] == [str(tmp_path), "/opt/hf/bin/python",
                                                     "vllm/vllm:1", None]  # fmt: skip
    assert plan.serve_inputs(Run("vllm-img", "tiny-llama", "hf", "default"))["software"] == []
    assert plan.gguf_tools.name == "llamacpp"  # a prebuilt llama.cpp converts nothing


def test_mlc_is_built_from_its_pinned_archive_into_its_environment() -> None:
    plan = plan_of(default_config())
    mlc = plan.instances["mlc"]
    path, sha256, commit = mlc.archive
    assert path == REPO / "envs/sources/mlc-llm-79d603f0-src.tar.xz" and path.is_file()
    assert sha256.startswith("609182d01a8e") and commit.startswith("79d603f0")
    assert mlc.src == "resources/engines/mlc/src-archive-609182d01a8e"
    built = f"resources/engines/mlc/archive-609182d01a8e-env-{mlc.env_key}/build.json"
    assert mlc.software_file == built and mlc.software_id == "archive-609182d01a8e"
    assert plan.mlc_builds == ["mlc"] and not mlc.uses_gpu  # device: cpu
    run = Run("mlc", "tiny-llama", "q4f32_1", "default")
    assert plan.serve_inputs(run)["software"] == built
    assert (
        plan.serve_inputs(run)["model"] == "resources/prepared/mlc/tiny-llama/q4f32_1/compile.json"
    )
    assert (
        plan.prepare_inputs("mlc", "tiny-llama", "q4f32_1", "convert_weight")["software"] == built
    )
    # two instances one server flag apart share one build; an mlc_llm you have builds nothing
    cfg = default_config()
    cfg["engines"]["mlc-b"] = {**cfg["engines"]["mlc"], "kind": "mlc", "server_args": ["-x"]}
    cfg["engines"]["mlc-own"] = {"kind": "mlc", "python": "/opt/mlc/bin/python"}
    plan = plan_of(cfg)
    assert plan.instances["mlc-b"].software_file == built
    assert plan.instances["mlc-own"].software == "python"
    assert plan.instances["mlc-own"].software_file is None


def test_an_instance_without_env_file_builds_from_its_engines() -> None:
    """EngineSpec.env_file is an instance's default; one that brings its own python gets none."""
    cfg = default_config()
    cfg["engines"]["vllm-2"] = {"kind": "vllm"}
    cfg["engines"]["vllm-own"] = {"kind": "vllm", "python": "/usr/bin/python3"}
    plan = plan_of(cfg)
    assert plan.instances["vllm-2"].entry["env_file"] == "envs/vllm-cpu.yaml"
    assert plan.instances["vllm-2"].env_key == plan.instances["vllm"].env_key  # shared
    assert "env_file" not in plan.instances["vllm-own"].entry


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"archive": "envs/sources/other.tar.xz"}, "engines.mlc: archive envs/sources/other.tar.xz "
         "needs its sha256 and the upstream commit it holds"),
        ({"archive": "/no/such.tar.xz", "sha256": "0" * 64, "commit": "c" * 40},
         "engines.mlc.archive: /no/such.tar.xz does not exist"),
        ({"device": "vulkan"}, "mlc: device 'vulkan': the apache-tvm wheel generates code for cpu "
         "and cuda only"),
        ({"env_file": "envs/none.yaml"}, "engines.mlc.env_file: envs/none.yaml does not exist"),
    ],
)  # fmt: skip
def test_mlc_config_errors_are_one_line(entry: dict[str, Any], message: str) -> None:
    cfg = default_config()
    cfg["engines"]["mlc"] |= entry
    with pytest.raises(ConfigError, match=f"^config: .*{re.escape(message)}") as err:
        plan_of(cfg)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["engines"].update(x={"kind": "nosuch"}), "engines.x: unknown kind 'nosuch'"),
        (lambda c: c["benchmarks"].append(dict(c["benchmarks"][1])), "listed twice"),
        (lambda c: c["sweeps"]["default"].update(request_rates=[1, 1.0]), "rate-1 is listed"),
        (lambda c: c["engines"]["vllm"].update(env_file="envs/no.yaml"), "envs/no.yaml does not"),
        (lambda c: c.update(sweep={}), "`sweep:` is now `sweeps:`"),  # before the schema
        (lambda c: c["sweeps"]["default"].update(request_rates=[1, 0]), "request_rates.1: 0 is"),
        # an overlay's option whose flag the default's server_args also set (gpu.yaml once did)
        (lambda c: c["engines"]["vllm"].update(dtype="float16"), "vllm: --dtype is set by the"),
        (
            lambda c: c["engines"]["vllm"].update(
                python="/usr/bin/python3", container={"image": "v"}
            ),
            "engines.vllm: container and python",
        ),
        (lambda c: c["engines"]["llamacpp"].update(backend="metal"),
         "engines.llamacpp.backend: 'metal' is not one of cpu, cuda"),
        (lambda c: c["engines"]["vllm"].update(backend="cuda"),
         "engines.vllm.backend: vllm has no such option; its own: device, dtype, "),
        # a misspelt option was ignored in silence; now it is named, with the closest one
        (lambda c: c["engines"]["vllm"].update(max_num_seq=8),
         "engines.vllm.max_num_seq: vllm has no such option; did you mean max_num_seqs? its "
         "own: device, dtype, max_model_len, max_num_seqs, enforce_eager "
         "(enginebench/engines/vllm.py)"),
        (lambda c: c["engines"]["vllm"].update(max_num_seqs="8"),
         "engines.vllm.max_num_seqs: '8' is not an integer"),
        (lambda c: c["engines"]["llamacpp"].update(cmake_flags="-DX=1"),
         "engines.llamacpp.cmake_flags: '-DX=1' is not a list of strings"),
        (lambda c: c["engines"]["llamacpp"].update(sha256="abc"),
         "engines.llamacpp.sha256: 'abc' does not match [0-9a-f]{64}"),
    ],
)  # fmt: skip
def test_config_errors(mutate: Any, message: str) -> None:
    cfg = default_config()
    mutate(cfg)
    with pytest.raises(ConfigError, match=f"^config: .*{re.escape(message)}"):
        plan_of(cfg)


def test_point_names_come_from_one_function() -> None:
    """The names the workflow plans, the sweep runs and the report reads are `point_name`'s."""
    sweep = {"request_rates": [0.5, 2, "inf"], "concurrency": [4], "repeats": 2}
    cfg = default_config()
    cfg["sweeps"]["r"] = sweep
    cfg["benchmarks"][0]["sweeps"] = ["r"]
    plan = plan_of(cfg)
    points = plan.run_spec(plan.runs[0]).points  # what the serve job runs
    names = [p.name for p in points]
    assert list(points) == points_from_config(plan.sweeps["r"].entry)
    assert (
        names == [p.name for p in points] == [point_name(p.mode, p.load, p.repeat) for p in points]
    )
    assert names[:4] == ["rate-0.5-r1", "rate-2-r1", "rate-inf-r1", "conc-4-r1"]
    read = [parse_name(n) for n in names]  # what the report reads back
    assert [p.name for p in read if p] == names


def test_no_point_name_is_spelled_anywhere_else() -> None:
    """No module but enginebench/points.py formats a `rate-` / `conc-` name or declares a
    point type."""
    spelled = re.compile(r"""f["'](rate|conc)-|["'](rate|conc)-["']|class \w*Point\b""")
    sources = [
        p
        for folder in ("enginebench", "workflow", "benchmarks")
        for p in sorted((REPO / folder).rglob("*"))
        if p.suffix in (".py", ".smk") and p != REPO / "enginebench" / "points.py"
    ]
    assert len(sources) > 50
    found = [f"{p}: {m.group(0)}" for p in sources for m in spelled.finditer(p.read_text())]
    assert found == []


def test_the_published_gpu_configs_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config/gpu.yaml, and run 3's overlay over it, as `--configfile` layers them over the
    embedded config: each plans the runs docs/results/h200 says it made."""
    import yaml
    from snakemake.utils import update_config

    def layered(*files: str) -> dict[str, Any]:
        config = default_config()
        for f in files:
            update_config(config, yaml.safe_load((REPO / f).read_text()))
        return config

    gpu = plan_of(layered("config/gpu.yaml"))
    assert {(r.engine, r.quant, r.sweep) for r in gpu.runs if r.engine == "vllm"} == {
        ("vllm", "hf", s) for s in ("default", "vllm-high", "decode")
    }
    # llama.cpp's `backend` (cpu | cuda) is not LMDeploy's (turbomind | pytorch): each engine
    # gets its own or none, never the other's default
    lmdeploy = next(r for r in gpu.runs if r.engine == "lmdeploy")
    assert gpu.instances["lmdeploy"].backend == "pytorch"
    assert gpu.run_spec(lmdeploy).options["backend"] == "pytorch"
    # an instance's entry, and so its jobs' params, holds its own engine's options only
    default = plan_of(default_config())
    assert "backend" not in default.instances["vllm"].entry
    assert "git_url" not in default.instances["vllm"].entry
    assert default.instances["llamacpp"].entry["cmake_flags"] == []  # llama.cpp's default
    vllm = next(r for r in default.runs if r.engine == "vllm")
    assert "cmake_flags" not in default.run_spec(vllm).options
    assert gpu.instances["llamacpp"].build.endswith("-cuda")
    exl2 = gpu.prepare_params("exllamav2", "llama-2-7b", "4.0bpw", "convert_exl2")
    assert exl2["options"]["convert_args"][:2] == ["-r", "16"]
    # the GPU engines' servers start as the published H100 run started them (its server.json)
    from enginebench.engines.registry import get_engine
    from enginebench.engines.spec import ServerContext

    for name in ("sglang", "lmdeploy"):
        run = next(r for r in gpu.runs if r.engine == name)
        p = gpu.run_spec(run)
        published = REPO / f"docs/results/h100/run-2/runs/{name}_llama-2-7b_hf_default/server.json"
        argv = json.loads(published.read_text())["argv"]
        port = next(a for a in argv if a.isdigit())
        ctx = ServerContext(
            model="resources/models/llama-2-7b/hf", served_name="llama-2-7b", port=int(port),
            extra_args=p.server_args, options=p.options, python=p.python,
        )  # fmt: skip
        server_argv = get_engine(name).server_argv
        assert server_argv is not None and server_argv(ctx) == argv
    # ExLlamaV2 (TabbyAPI) as run 3 started it: its argv (the server's absolute paths there,
    # `--disable-auth`'s value redacted by the provenance) and its environment, which holds
    # the switch TabbyAPI needs without flash-attn
    run = next(r for r in gpu.runs if r.engine == "exllamav2")
    p = gpu.run_spec(run)
    served = json.loads(
        (
            REPO / "docs/results/h100/run-3/runs/exllamav2_llama-2-7b_4.0bpw_default/server.json"
        ).read_text()
    )
    argv = served["argv"]
    ctx = ServerContext(
        model=argv[argv.index("--model-dir") + 1] + "/" + argv[argv.index("--model-name") + 1],
        served_name="exl2-4.0bpw", port=int(argv[argv.index("--port") + 1]),
        extra_args=p.server_args, python=p.python,
        options={**p.options, "source_dir": str(Path(argv[1]).parent)},
    )  # fmt: skip
    server_argv = get_engine("exllamav2").server_argv
    assert server_argv is not None
    ours = server_argv(ctx)
    assert len(ours) == len(argv)
    assert [a if b != "<redacted>" else b for a, b in zip(ours, argv, strict=True)] == argv
    assert p.env == served["env"] and p.env["EXLLAMA_NO_FLASH_ATTN"] == "1"
    # the model the plan serves is the one the conversion made, by the name it was served under
    assert Path(p.model).name == argv[argv.index("--model-name") + 1]
    assert gpu.sweeps["vllm-high"].point_names[-1] == "conc-128"
    # the overlay's second llama.cpp runs the first one's build, which must exist by then
    overlay = layered("config/gpu.yaml", "docs/results/h200/run-3/config.yaml")
    bin_dir = Path(overlay["engines"]["llamacpp-nocram"]["bin_dir"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"engines\.llamacpp-nocram\.bin_dir: .* does not exist"):
        plan_of(overlay)
    bin_dir.mkdir(parents=True)
    (bin_dir / "llama-server").touch()
    run3 = plan_of(overlay)
    assert run3.instances["llamacpp"].bin_dir == str(bin_dir)
    assert len(run3.runs) == 8 and {r.sweep for r in run3.runs} == {
        "default", "vllm-high", "decode", "ttft",
    }  # fmt: skip
    nocram = next(r for r in run3.runs if r.engine == "llamacpp-nocram")
    assert run3.run_spec(nocram).server_args[-2:] == ("--cache-ram", "0")


def test_completed_only_aggregates_the_runs_whose_table_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = {**default_config(), "completed_only": True}
    with pytest.raises(ConfigError, match=r"completed_only: no run has completed yet"):
        plan_of(cfg)
    everything = plan_of(default_config())
    done = everything.runs[1::2]
    for run in done:
        Path(run.dir).mkdir(parents=True)
        Path(run.dir, "table.csv").touch()
    plan = plan_of(cfg)
    assert plan.runs == done and plan.left_out == everything.runs[::2]
    assert plan.table_csvs == [f"{run.dir}/table.csv" for run in done]
    # a decode run whose llama-bench never ran: the decode table goes without it
    assert plan.llama_bench_jsons == [] != everything.llama_bench_jsons


def _layered(*files: str) -> dict[str, Any]:
    """The embedded config with `files` layered over it, as `--configfile` does."""
    import yaml
    from snakemake.utils import update_config

    config = default_config()
    for f in files:
        update_config(config, yaml.safe_load((REPO / f).read_text()))
    return config


def test_a_trace_workload_is_replayed_at_its_speedups() -> None:
    """config/traces.yaml: each trace sweep's serve job reads the trace itself (no prompt file),
    its points are trace-<x>, and each point replays its own copy of the trace."""
    from enginebench.bench_command import bench_argv

    plan = plan_of(_layered("config/traces.yaml"))
    assert {(r.engine, r.sweep) for r in plan.runs} == {
        (e, s) for e in ("llamacpp", "vllm") for s in ("mooncake", "azure")
    }
    run = next(r for r in plan.runs if (r.engine, r.sweep) == ("llamacpp", "mooncake"))
    spec = plan.run_spec(run)
    path = "tests/fixtures/traces/mooncake-fast25-conversation-head40.jsonl"
    assert spec.trace == {"path": path, "start_s": 5.999, "input_scale": 0.125, "output_scale": 0.1}
    assert spec.prompts_file == "" and plan.serve_inputs(run)["prompts"] == path
    assert [p.name for p in spec.points] == ["trace-1", "trace-2"]
    argv = bench_argv(spec, "http://h", "m", "ignore_eos", True, spec.points[1], first_row=4,
                      copy=2)  # fmt: skip
    at = argv.index("--dataset-name")
    assert argv[at : at + 12] == [
        "--dataset-name", "trace", "--dataset-path", path, "--trace-start", "5.999",
        "--trace-input-scale", "0.125", "--trace-output-scale", "0.1", "--trace-copy", "2",
    ]  # fmt: skip
    assert argv[argv.index("--trace-speedup") + 1] == "2"
    for absent in ("--prompts-file", "--prompt-offset", "--num-prompts", "--request-rate"):
        assert absent not in argv
    warm = bench_argv(spec, "http://h", "m", "ignore_eos", True, None, 4)
    assert warm[warm.index("--trace-copy") + 1] == "0" and warm[-4:] == [
        "--num-prompts", "4", "--concurrency", "4",
    ]  # fmt: skip
    # a run without a trace has no `trace` in its parameter: no job of an earlier config reruns
    plain = plan_of(default_config())
    assert "trace" not in plain.run_spec(plain.runs[0]).as_param()
    assert spec.as_param()["trace"] == spec.trace


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s, w: s.update(trace_speedups=[1]),
         "sweeps.t.trace_speedups: replays a trace; give the sweep a workload with dataset: trace"),
        (lambda s, w: w.update(dataset="trace", dataset_path="t.csv"),
         "sweeps.t: a trace workload is replayed by trace_speedups"),
        (lambda s, w: (w.update(dataset="trace", dataset_path="t.csv"),
                       s.update(trace_speedups=[1], request_rates=[1])),
         "sweeps.t: a trace replay's points are its trace_speedups; set request_rates: []"),
        (lambda s, w: (w.update(dataset="trace"), s.update(trace_speedups=[1])),
         "sweeps.t.workload.dataset_path: a trace workload replays a file; name it"),
        (lambda s, w: w.update(trace={"input_scale": 0.5}),
         "sweeps.t.workload.trace: only read by dataset: trace"),
        (lambda s, w: w.update(dataset="trace", trace={"speed": 2}),
         "'speed' was unexpected"),
    ],
)  # fmt: skip
def test_trace_config_errors(mutate: Any, message: str) -> None:
    cfg = default_config()
    sweep: dict[str, Any] = {"request_rates": [], "concurrency": [], "workload": {"name": "w"}}
    mutate(sweep, sweep["workload"])
    cfg["sweeps"]["t"] = sweep
    cfg["benchmarks"][0]["sweeps"] = ["t"]
    with pytest.raises(ConfigError, match=f"^config: .*{re.escape(message)}"):
        plan_of(cfg)


def test_a_sessions_workload_runs_closed_loop_on_whole_sessions() -> None:
    """config/workloads.yaml's sessions sweep: its prompt file holds whole sessions (turns
    passed to the materializer), its points are users, its think time reaches every point."""
    from enginebench.bench_command import materialize_argv

    plan = plan_of(_layered("config/workloads.yaml"))
    run = next(r for r in plan.runs if (r.engine, r.sweep) == ("vllm", "sessions"))
    spec = plan.run_spec(run)
    assert [(p.name, p.num_prompts) for p in spec.points] == [("conc-1", 64), ("conc-4", 64)]
    assert plan.sweeps["sessions"].prompt_rows == 8 + 64 + 64
    assert spec.bench_args == ("--think-time", "0.25", "--think-time-dist", "exponential")
    argv = materialize_argv(plan.sweeps["sessions"].workload, "tok", 136, "out.jsonl")
    assert argv[argv.index("--dataset-name") + 1] == "sessions"
    assert argv[argv.index("--session-turns") + 1] == "8"
    assert "--session-turns" not in materialize_argv(plan.sweeps["prefix-groups"].workload,
                                                     "tok", 8, "o")  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s, w: w.pop("turns"), "sweeps.t.workload.turns: a sessions workload needs"),
        (lambda s, w: s.update(request_rates=[1]),
         "sweeps.t: multi-turn sessions run closed loop"),
        (lambda s, w: s.update(warmups=3),
         "sweeps.t.warmups: 3 is not whole sessions of 4 turns"),
        (lambda s, w: s.update(concurrency_num_prompts=10),
         "sweeps.t.concurrency_num_prompts: 10 is not whole sessions of 4 turns"),
        (lambda s, w: w.update(dataset="random"),
         "sweeps.t.workload.turns, think_time_s: only read by dataset: sessions"),
    ],
)  # fmt: skip
def test_sessions_config_errors(mutate: Any, message: str) -> None:
    cfg = default_config()
    workload = {"name": "w", "dataset": "sessions", "turns": 4}
    sweep: dict[str, Any] = {"request_rates": [], "concurrency": [2], "warmups": 4,
                             "concurrency_num_prompts": 16, "workload": workload}  # fmt: skip
    mutate(sweep, workload)
    cfg["sweeps"]["t"] = sweep
    cfg["benchmarks"][0]["sweeps"] = ["t"]
    with pytest.raises(ConfigError, match=f"^config: .*{re.escape(message)}"):
        plan_of(cfg)


def test_a_ramp_rises_to_each_rate_point() -> None:
    """A sweep's ramp_up: each rate point's load generator rises from start_rps to the point's
    rate (its name); a run without one keeps its parameter as it was."""
    from enginebench.bench_command import bench_argv

    cfg = default_config()
    cfg["sweeps"]["r"] = {"request_rates": [4, 12], "concurrency": [],
                          "ramp_up": {"strategy": "exponential", "start_rps": 1}}  # fmt: skip
    cfg["benchmarks"][0]["sweeps"] = ["r"]
    plan = plan_of(cfg)
    spec = plan.run_spec(plan.runs[0])
    assert spec.as_param()["ramp"] == {"strategy": "exponential", "start_rps": 1}
    argv = bench_argv(spec, "http://h", "m", "ignore_eos", True, spec.points[1])
    at = argv.index("--ramp-up-strategy")
    assert argv[at : at + 8] == [
        "--ramp-up-strategy", "exponential", "--ramp-up-start-rps", "1",
        "--ramp-up-end-rps", "12", "--burstiness", "1",
    ]  # fmt: skip
    assert "--request-rate" not in argv and argv[argv.index("--point") + 1] == "rate-12"
    plain = plan_of(default_config())
    assert "ramp" not in plain.run_spec(plain.runs[0]).as_param()
    cfg["sweeps"]["r"]["request_rates"] = [0.5, 4]
    with pytest.raises(ConfigError, match=r"sweeps.r.ramp_up: each of request_rates is a ramp"):
        plan_of(cfg)


def test_fidelity_gets_a_server_of_its_own_per_quant() -> None:
    """Each engine x model x quant whose benchmark asks for it (the default) and whose model
    has HF weights: the first sweep's server, the collection in place of points."""
    cfg = default_config()
    cfg["benchmarks"][2]["fidelity"] = False  # transformers
    cfg["models"]["file"] = {"source": "gguf", "repo": "r/m", "filename": "m.gguf",
                             "tokenizer": "r/t"}  # fmt: skip
    cfg["benchmarks"].append({"engine": "llamacpp", "model": "file", "quants": ["file"]})
    plan = plan_of(cfg)
    assert [r[:3] for r in plan.fidelity_runs] == [
        ("llamacpp", "tiny-llama", "f16"), ("llamacpp", "tiny-llama", "Q4_K_M"),
        ("vllm", "tiny-llama", "hf"), ("mlc", "tiny-llama", "q0f32"),
        ("mlc", "tiny-llama", "q4f32_1"),
    ]  # fmt: skip
    assert "results/fidelity.csv" in plan.final_outputs
    spec = plan.fidelity_spec("vllm", "tiny-llama", "hf")
    served = plan.run_spec(Run("vllm", "tiny-llama", "hf", "default"))
    assert spec.server_args == served.server_args and spec.points == () and spec.warmups == 0
    assert spec.fidelity == {"num_prompts": 16, "max_tokens": 32, "top_logprobs": 20,
                             "out": "results/vllm/tiny-llama/hf/fidelity-engine.jsonl"}  # fmt: skip
    assert spec.server_json == "results/vllm/tiny-llama/hf/fidelity-server.json"
    prompts = "results/datasets/tiny-llama/random-128-128/16.jsonl"
    assert spec.prompts_file == prompts and plan.fidelity_inputs("vllm", "tiny-llama", "hf")[
        "prompts"] == prompts  # fmt: skip
    assert "random-128-128" in plan.workloads
    assert plan.llama_kld_jsons == ["results/llamacpp/tiny-llama/Q4_K_M/llama-kld.json"]
    assert plan.llama_kld_inputs("llamacpp", "tiny-llama", "Q4_K_M") == {
        "tool": "resources/engines/llamacpp/pypi-0.3.36-cpu/tools/llama-perplexity",
        "build": "resources/engines/llamacpp/pypi-0.3.36-cpu/bin/build.json",
        "base": "resources/models/tiny-llama/gguf/f16.gguf",
        "gguf": "resources/models/tiny-llama/gguf/Q4_K_M.gguf", "prompts": prompts,
    }  # fmt: skip
    # a run without fidelity has none in its parameter: no job of an earlier config reruns
    assert "fidelity" not in served.as_param()
    off = default_config()
    for b in off["benchmarks"]:
        b["fidelity"] = False
    plan = plan_of(off)
    assert plan.fidelity_runs == [] and "results/fidelity.csv" not in plan.final_outputs


def test_fidelity_needs_a_prompt_file() -> None:
    cfg = default_config()
    cfg["workload"] = {"name": "t", "dataset": "trace", "dataset_path": "t.jsonl"}
    cfg["sweeps"]["default"]["workload"] = {"name": "r", "dataset": "random"}
    with pytest.raises(ConfigError, match="fidelity sends the first prompts"):
        plan_of(cfg)
