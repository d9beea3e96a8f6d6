"""Every engine's exact commands: server argv, version argv, preparation steps, registry."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from enginebench.engines.container import Container
from enginebench.engines.prepare import PrepareError, run_step
from enginebench.engines.registry import ENGINES, UnknownEngineError, get_engine
from enginebench.engines.spec import EngineConfigError, EngineSpec, PrepareContext, ServerContext

PY = "/venv/bin/python"
HF = "/m/hf"


VERSION_CODE = (
    "import importlib.metadata as m; d = m.packages_distributions().get('{module}'); "
    "print(m.version(d[0]) if d else __import__('{module}').__version__)"
)


def ctx(**kw: object) -> ServerContext:
    base: dict[str, object] = {"model": HF, "served_name": "tiny", "port": 8123, "python": PY}
    base.update(kw)
    return ServerContext(**base)  # type: ignore[arg-type]


def test_registry_lists_every_engine_once() -> None:
    assert sorted(ENGINES) == sorted(
        ["llamacpp", "vllm", "transformers", "sglang", "mlc", "lmdeploy", "trtllm", "tgi",
         "exllamav2", "openai"]
    )  # fmt: skip
    assert all(isinstance(s, EngineSpec) and ENGINES[n] is s for n, s in ENGINES.items())


def test_unknown_engine_is_one_line_listing_known() -> None:
    with pytest.raises(UnknownEngineError) as err:
        get_engine("vlm")
    msg = str(err.value)
    assert "\n" not in msg and "'vlm'" in msg and "llamacpp" in msg and "vllm" in msg


def test_every_venv_engine_has_an_existing_env_file() -> None:
    root = Path(__file__).resolve().parents[1]
    for spec in ENGINES.values():
        if spec.software == "venv":
            assert spec.env_file and (root / spec.env_file).is_file(), spec.name
            assert spec.import_name, spec.name


def test_llamacpp() -> None:
    spec = get_engine("llamacpp")
    opts = {"parallel": 8, "ctx_size": 4096}
    c = ctx(model="/m/q4.gguf", bin_dir="/b", python=None, options=opts, extra_args=("--no-webui",))
    assert spec.server_argv is not None and spec.version_argv is not None
    assert spec.server_argv(c) == [
        "/b/llama-server", "-m", "/m/q4.gguf", "--host", "127.0.0.1", "--port", "8123",
        "--alias", "tiny", "--metrics", "-np", "8", "-c", "4096", "--no-webui",
    ]  # fmt: skip
    assert spec.metrics_path == "/metrics"  # what --metrics serves
    assert spec.version_argv(c) == ["/b/llama-server", "--version"]
    assert (spec.software, spec.model_format) == ("cmake", "gguf")
    assert spec.ignore_eos_style == "ignore_eos"
    assert spec.prepare == ("convert_gguf", "quantize")
    assert not spec.uses_gpu({"backend": "cpu"}) and spec.uses_gpu({"backend": "cuda"})
    assert not spec.uses_gpu({})
    with pytest.raises(EngineConfigError):
        spec.server_argv(ctx(bin_dir=None))


def test_vllm_cpu() -> None:
    spec = get_engine("vllm")
    c = ctx(options={"dtype": "float32", "max_model_len": 2048, "enforce_eager": True},
            extra_args=("--max-num-seqs", "8"))  # fmt: skip
    assert spec.server_argv is not None and spec.version_argv is not None
    assert spec.server_argv(c) == [
        PY, "-m", "vllm.entrypoints.openai.api_server", "--model", HF,
        "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", "8123",
        "--enable-prompt-tokens-details",
        "--dtype", "float32", "--max-model-len", "2048", "--enforce-eager", "--max-num-seqs", "8",
    ]  # fmt: skip
    assert spec.version_argv(c) == [PY, "-c", VERSION_CODE.format(module="vllm")]
    assert spec.env(c)["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert "VLLM_CPU_KVCACHE_SPACE" not in spec.env(ctx(options={"device": "cuda"}))
    assert spec.venv_post_install == (
        ("-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"),
    )
    assert spec.env_file == "envs/vllm-cpu.yaml" and spec.import_name == "vllm"
    assert spec.readiness == "models" and spec.served_name(c) == "tiny"
    assert not spec.uses_gpu({}) and spec.uses_gpu({"device": "cuda"})
    with pytest.raises(EngineConfigError):
        spec.server_argv(ctx(python=None))


def test_transformers_serve(tmp_path: Path) -> None:
    spec = get_engine("transformers")
    c = ctx(options={"dtype": "float32", "continuous_batching": True}, workdir=str(tmp_path))
    assert spec.server_argv is not None
    assert spec.server_argv(c) == [
        PY, "-m", "transformers.cli.transformers", "serve", HF, "--host", "127.0.0.1",
        "--port", "8123", "--device", "cpu", "--dtype", "float32", "--continuous-batching",
    ]  # fmt: skip
    env = spec.env(c)
    assert Path(env["HF_HUB_CACHE"]).is_dir()  # /v1/models answers 500 without it
    assert spec.served_name(c) == HF  # pinned to its force_model string
    assert spec.ignore_eos_style == "generation_config" and not spec.lists_model


def test_sglang() -> None:
    spec = get_engine("sglang")
    assert spec.server_argv is not None
    opts = {"mem_fraction_static": 0.8, "sampling_backend": "pytorch"}
    assert spec.server_argv(ctx(options=opts)) == [
        PY, "-m", "sglang.launch_server", "--model-path", HF, "--served-model-name", "tiny",
        "--host", "127.0.0.1", "--port", "8123", "--enable-cache-report",
        "--mem-fraction-static", "0.8", "--sampling-backend", "pytorch",
    ]  # fmt: skip
    assert spec.uses_gpu({}) and spec.env_file == "envs/sglang.yaml"


def test_lmdeploy() -> None:
    spec = get_engine("lmdeploy")
    assert spec.server_argv is not None
    assert spec.server_argv(ctx(options={"backend": "turbomind", "session_len": 4096})) == [
        PY, "-m", "lmdeploy", "serve", "api_server", HF, "--server-name", "127.0.0.1",
        "--server-port", "8123", "--model-name", "tiny", "--backend", "turbomind",
        "--session-len", "4096",
    ]  # fmt: skip


def test_mlc_prepare_and_serve() -> None:
    spec = get_engine("mlc")
    p = PrepareContext(hf_dir=HF, out_dir="/out/q4", quant="q4f16_1", python=PY)
    assert spec.prepare_commands(p) == [
        ("convert_weight", [PY, "-m", "mlc_llm", "convert_weight", HF, "--quantization",
                            "q4f16_1", "--device", "cuda", "-o", "/out/q4"]),
        ("gen_config", [PY, "-m", "mlc_llm", "gen_config", HF, "--quantization", "q4f16_1",
                        "--conv-template", "LM", "-o", "/out/q4"]),
        ("compile", [PY, "-m", "mlc_llm", "compile", "/out/q4/mlc-chat-config.json",
                     "--device", "cuda",
                     "--opt", "flashinfer=0;cublas_gemm=0;cutlass=0;cudagraph=1",
                     "-o", "/out/q4/lib.so"]),
    ]  # fmt: skip
    assert spec.prepared_model is not None and spec.prepared_model(p) == "/out/q4"
    c = ctx(model="/out/q4")
    assert spec.server_argv is not None
    assert spec.server_argv(c) == [
        PY, "-m", "mlc_llm", "serve", "/out/q4", "--model-lib", "/out/q4/lib.so",
        "--device", "cuda", "--mode", "server", "--host", "127.0.0.1", "--port", "8123",
        "--enable-debug",
    ]  # fmt: skip
    assert spec.served_name(c) == "/out/q4" and spec.ignore_eos_style == "debug_config"
    with pytest.raises(EngineConfigError):
        spec.prepare_argv("quantize", p)


def test_mlc_on_the_cpu() -> None:
    """device: cpu compiles for LLVM with MLC's own optimization defaults, and serves there;
    `opt` replaces the compiler's flags; the version comes from the installed distribution."""
    spec = get_engine("mlc")
    p = PrepareContext(hf_dir=HF, out_dir="/o", quant="q4f32_1", python=PY,
                       options={"device": "cpu"})  # fmt: skip
    steps = dict(spec.prepare_commands(p))
    assert steps["convert_weight"][-4:] == ["--device", "cpu", "-o", "/o"]
    assert steps["compile"][4:] == ["/o/mlc-chat-config.json", "--device", "cpu", "-o", "/o/lib.so"]
    p = PrepareContext(hf_dir=HF, out_dir="/o", quant="q4f32_1", python=PY,
                       options={"device": "cpu", "opt": "O3"})  # fmt: skip
    assert spec.prepare_argv("compile", p)[7:9] == ["--opt", "O3"]
    assert spec.server_argv is not None and spec.version_argv is not None
    argv = spec.server_argv(ctx(model="/o", options={"device": "cpu"}))
    assert argv[argv.index("--device") + 1] == "cpu"
    assert "importlib.metadata" in spec.version_argv(ctx())[-1]
    assert not spec.uses_gpu({"device": "cpu"}) and spec.uses_gpu({})


@pytest.mark.parametrize("device", ["vulkan", "rocm:0", "metal"])
def test_mlc_device_the_tvm_wheel_cannot_target_is_one_line(device: str) -> None:
    spec = get_engine("mlc")
    p = PrepareContext(hf_dir=HF, out_dir="/o", quant="q0f32", python=PY,
                       options={"device": device})  # fmt: skip
    with pytest.raises(EngineConfigError) as err:
        spec.prepare_commands(p)
    assert str(err.value) == (
        f"mlc: device {device!r}: the apache-tvm wheel generates code for cpu and cuda only"
    )


def test_mlc_quant_without_cpu_kernels_is_refused_on_the_cpu() -> None:
    spec = get_engine("mlc")
    p = PrepareContext(hf_dir=HF, out_dir="/o", quant="e4m3_e4m3_f16", python=PY,
                       options={"device": "cpu"})  # fmt: skip
    with pytest.raises(EngineConfigError, match=r"^mlc: quant 'e4m3_e4m3_f16' has CUDA kernels "
                       r"only \(device 'cpu'\); on it use one of q0f16, ") as err:  # fmt: skip
        spec.prepare_commands(p)
    assert "\n" not in str(err.value)
    spec.prepare_commands(replace(p, options={"device": "cuda:1"}))  # fine there


def test_trtllm_prepare_and_serve() -> None:
    spec = get_engine("trtllm")
    p = PrepareContext(hf_dir=HF, out_dir="/out/i4", quant="int4_wo", python=PY,
                       options={"source_dir": "/src/trtllm", "max_batch_size": 64})  # fmt: skip
    assert spec.prepare_commands(p) == [
        ("convert_checkpoint", [
            PY, "/src/trtllm/examples/models/core/llama/convert_checkpoint.py",
            "--model_dir", HF, "--output_dir", "/out/i4/checkpoint", "--tp_size", "1",
            "--dtype", "float16", "--use_weight_only", "--weight_only_precision", "int4"]),
        ("build_engine", [
            "/venv/bin/trtllm-build", "--checkpoint_dir", "/out/i4/checkpoint",
            "--output_dir", "/out/i4/engine", "--gemm_plugin", "auto", "--max_batch_size", "64"]),
    ]  # fmt: skip
    assert spec.prepared_model is not None and spec.prepared_model(p) == "/out/i4/engine"
    c = ctx(model="/out/i4/engine", tokenizer=HF)
    assert spec.server_argv is not None
    assert spec.server_argv(c) == [
        "/venv/bin/trtllm-serve", "/out/i4/engine", "--tokenizer", HF, "--backend", "tensorrt",
        "--host", "127.0.0.1", "--port", "8123",
    ]  # fmt: skip
    assert spec.served_name(c) == "engine"  # listed under the folder's name
    assert spec.source == ("https://github.com/NVIDIA/TensorRT-LLM", "v1.2.1")
    with pytest.raises(EngineConfigError, match="unknown quant"):
        spec.prepare_argv("convert_checkpoint", PrepareContext(HF, "/o", "fp8", python=PY))
    with pytest.raises(EngineConfigError, match="source_dir"):
        spec.prepare_argv("convert_checkpoint", PrepareContext(HF, "/o", "fp16", python=PY))


def test_tgi_runs_its_pinned_image() -> None:
    spec = get_engine("tgi")
    assert spec.server_argv is not None and spec.version_argv is not None
    opts = {"max_total_tokens": 4096}
    # the launcher as the image runs it; engines/container.py wraps it (test_engines_container)
    assert spec.server_argv(ctx(options=opts)) == [
        "text-generation-launcher", "--model-id", HF, "--hostname", "127.0.0.1",
        "--port", "8123", "--max-total-tokens", "4096",
    ]  # fmt: skip
    assert spec.version_argv(ctx()) == ["text-generation-launcher", "--version"]
    assert Container.from_options(spec, opts) == Container(
        "ghcr.io/huggingface/text-generation-inference:3.3.6", "docker"
    )
    assert spec.software == "container" and spec.ignore_eos_style == "none"


def test_exllamav2_tabbyapi() -> None:
    spec = get_engine("exllamav2")
    p = PrepareContext(hf_dir=HF, out_dir="/out/e", quant="4.0bpw", python=PY)
    assert spec.prepare_commands(p) == [
        ("convert_exl2", [PY, "-m", "exllamav2.conversion.convert_exl2", "-i", HF,
                          "-o", "/out/e/work", "-cf", "/out/e/exl2-4.0bpw", "-b", "4.0"]),
    ]  # fmt: skip
    c = ctx(model="/out/e/exl2-4.0bpw", options={"source_dir": "/src/tabby", "max_seq_len": 4096})
    assert spec.server_argv is not None and spec.server_cwd is not None
    assert spec.server_argv(c) == [
        PY, "/src/tabby/main.py", "--host", "127.0.0.1", "--port", "8123",
        "--disable-auth", "true", "--model-dir", "/out/e", "--model-name", "exl2-4.0bpw",
        "--backend", "exllamav2", "--max-seq-len", "4096",
    ]  # fmt: skip
    assert spec.server_cwd(c) == "/src/tabby" and spec.served_name(c) == "exl2-4.0bpw"
    with pytest.raises(EngineConfigError):
        spec.prepare_argv("convert_exl2", PrepareContext(HF, "/o", "q4", python=PY))
    few_rows = {"convert_args": ["-r", "16", "-l", "512"]}
    p = PrepareContext(hf_dir=HF, out_dir="/out/e", quant="4.0bpw", python=PY, options=few_rows)
    assert spec.prepare_argv("convert_exl2", p)[-6:] == ["-b", "4.0", "-r", "16", "-l", "512"]
    convert_args = next(o for o in spec.options if o.name == "convert_args")
    assert convert_args.problem("-r 16") == "'-r 16' is not a list of strings"


def test_a_preparation_that_exits_0_without_its_model_fails(tmp_path: Path) -> None:
    """exllamav2's converter prints its error and exits 0: the step is not taken as done."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho ' ## Error: something'\nexit 0\n")
    fake.chmod(0o755)
    p = PrepareContext(hf_dir=HF, out_dir=str(tmp_path / "e"), quant="4.0bpw", python=str(fake))
    log = tmp_path / "convert.log"
    with pytest.raises(PrepareError) as err:
        run_step("exllamav2", "convert_exl2", p, log)
    assert str(err.value) == (
        f"exllamav2 convert_exl2 exited 0 but made no {tmp_path}/e/exl2-4.0bpw; see {log}"
    )
    assert "## Error: something" in log.read_text()


def test_openai_external() -> None:
    spec = get_engine("openai")
    assert spec.server_argv is None and spec.version_argv is None
    assert spec.software == "external" and spec.model_format == "none"
    assert not spec.uses_gpu({"base_url": "https://x"})


def test_engines_without_preparation_refuse_steps() -> None:
    with pytest.raises(EngineConfigError):
        get_engine("vllm").prepare_argv("compile", PrepareContext(HF, "/o", "hf"))


def test_spec_is_frozen() -> None:
    spec = get_engine("vllm")
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]
    json.dumps(spec.prepare)  # plain data


@pytest.mark.parametrize("extra", [("--dtype", "float32"), ("--dtype=float32",)])
def test_a_flag_set_by_an_option_and_server_args_is_refused(extra: tuple[str, ...]) -> None:
    c = ServerContext(
        model="m", served_name="m", python="py", options={"dtype": "float16"}, extra_args=extra
    )
    with pytest.raises(EngineConfigError, match=r"--dtype is set by the option `dtype: float16`"):
        get_engine("vllm").server_argv(c)


def test_gpu_config_layered_over_the_default_runs_what_it_says() -> None:
    """config/gpu.yaml over config/config.yaml (as `--configfile` layers them): no engine keeps
    the CPU default's flags (fp32, eager), no flag twice, no CPU-only environment."""
    import yaml
    from snakemake.utils import update_config

    root = Path(__file__).resolve().parent.parent
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    update_config(config, yaml.safe_load((root / "config" / "gpu.yaml").read_text()))
    for name in ("vllm", "transformers"):
        eng = config["engines"][name]
        c = ServerContext(
            model="m", served_name="m", python="py", options=eng,
            extra_args=tuple(eng.get("server_args", ())),
        )  # fmt: skip
        spec = get_engine(name)
        argv = spec.server_argv(c)
        flags = [a for a in argv if a.startswith("--")]
        assert len(flags) == len(set(flags)), argv
        assert "--enforce-eager" not in argv and "float32" not in argv, argv
        assert argv[argv.index("--dtype") + 1] == "float16"
        assert not any(k.startswith("VLLM_CPU") for k in {**spec.env(c), **eng.get("env", {})})


def test_options_lists_each_engines_own(capsys: pytest.CaptureFixture[str]) -> None:
    from enginebench.cli import main

    assert main(["options", "lmdeploy"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "lmdeploy:"
    assert out[1].split()[:2] == ["backend", "str"] and "one of turbomind, pytorch" in out[1]
    assert main(["options", "nosuch"]) == 2
    assert "unknown engine 'nosuch'" in capsys.readouterr().err
    # every option an engine's server argv turns into a flag is declared with its type
    for spec in ENGINES.values():
        names = [o.name for o in spec.options]
        assert len(names) == len(set(names)), spec.name


def test_python_engine_version_read_without_importing_it(tmp_path: Path) -> None:
    """The version argv of a venv engine prints its distribution's version (vllm-cpu installs
    the module vllm) without importing the module, else the module's own __version__."""
    import subprocess
    import sys

    from enginebench.engines.spec import py_version_argv

    def printed(module: str, **env: str) -> str:
        argv = py_version_argv(module)(ServerContext("/m", "m", python=sys.executable))
        out = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
        return out.stdout.strip()

    # a distribution named otherwise than its module, whose import would fail: not imported
    (tmp_path / "heavy").mkdir()
    (tmp_path / "heavy" / "__init__.py").write_text("raise ImportError('imported')\n")
    info = tmp_path / "heavy_cpu-0.32.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: heavy-cpu\nVersion: 0.32.0\n")
    (info / "top_level.txt").write_text("heavy\n")
    assert printed("heavy", PYTHONPATH=str(tmp_path)) == "0.32.0"
    # no distribution: the module's own __version__
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "__init__.py").write_text("__version__ = '1.2.3'\n")
    assert printed("loose", PYTHONPATH=str(tmp_path)) == "1.2.3"
