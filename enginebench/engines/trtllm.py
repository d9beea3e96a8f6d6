"""TensorRT-LLM (`trtllm-serve`, TensorRT engine backend). NVIDIA only: never run here.

Preparation: `convert_checkpoint` (the model family's script from TensorRT-LLM's examples, at
the tag matching the wheel: `source`, fetched by the workflow unless the config's `source_dir`
names a checkout), then `build_engine` (`trtllm-build`). trtllm-serve
1.2.1 has no served-model-name flag: it lists a local model under its folder's name.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from enginebench.engines.spec import (
    EngineConfigError,
    EngineSpec,
    Option,
    PrepareContext,
    ServerContext,
    always,
    opt_flags,
    py_version_argv,
)

VERSION = "1.2.1"
SOURCE = ("https://github.com/NVIDIA/TensorRT-LLM", f"v{VERSION}")
# quant label -> convert_checkpoint.py flags
QUANT_FLAGS: dict[str, list[str]] = {
    "fp16": ["--dtype", "float16"],
    "bf16": ["--dtype", "bfloat16"],
    "int8_wo": ["--dtype", "float16", "--use_weight_only", "--weight_only_precision", "int8"],
    "int4_wo": ["--dtype", "float16", "--use_weight_only", "--weight_only_precision", "int4"],
}
OPTIONS = (
    Option("family", str, "the examples/models/core folder of its convert script", default="llama"),
    Option("tp", int, "tensor-parallel GPUs", default=1),
    Option("max_batch_size", int, "trtllm-build and trtllm-serve: most requests in a batch"),
    Option("max_seq_len", int, "trtllm-build: longest sequence"),
    Option("max_num_tokens", int, "trtllm-build: tokens per batch"),
    Option("kv_cache_free_gpu_memory_fraction", float, "trtllm-serve: KV cache share"),
)


def _flags(*names: str) -> tuple[Option, ...]:
    """Those options as a tool's flags (trtllm-build's and trtllm-serve's spell them by name)."""
    return tuple(replace(o, flag=f"--{o.name}") for o in OPTIONS if o.name in names)


BUILD_FLAGS = _flags("max_batch_size", "max_seq_len", "max_num_tokens")
SERVE_FLAGS = _flags("max_batch_size", "kv_cache_free_gpu_memory_fraction")


def checkpoint_dir(ctx: PrepareContext) -> str:
    return str(Path(ctx.out_dir) / "checkpoint")


def engine_dir(ctx: PrepareContext) -> str:
    return str(Path(ctx.out_dir) / "engine")


def prepare_argv(step: str, ctx: PrepareContext) -> list[str]:
    if step == "convert_checkpoint":
        if ctx.quant not in QUANT_FLAGS:
            known = ", ".join(QUANT_FLAGS)
            raise EngineConfigError(f"trtllm: unknown quant {ctx.quant!r}; known: {known}")
        src = ctx.options.get("source_dir")
        if not src:
            raise EngineConfigError(
                "trtllm: options.source_dir (a TensorRT-LLM checkout at the wheel's tag) is unset"
            )
        family = str(ctx.options.get("family", "llama"))
        script = Path(str(src)) / "examples" / "models" / "core" / family / "convert_checkpoint.py"
        return [ctx.require_python(), str(script), "--model_dir", ctx.hf_dir,
                "--output_dir", checkpoint_dir(ctx), "--tp_size", str(ctx.options.get("tp", 1)),
                *QUANT_FLAGS[ctx.quant]]  # fmt: skip
    if step == "build_engine":
        build = str(Path(ctx.python).parent / "trtllm-build") if ctx.python else "trtllm-build"
        return [build, "--checkpoint_dir", checkpoint_dir(ctx), "--output_dir", engine_dir(ctx),
                "--gemm_plugin", "auto", *opt_flags(ctx.options, BUILD_FLAGS)]  # fmt: skip
    raise EngineConfigError(f"trtllm: unknown preparation step {step!r}")


def server_argv(ctx: ServerContext) -> list[str]:
    serve = str(Path(ctx.require_python()).parent / "trtllm-serve")
    return [
        serve, ctx.model,
        "--tokenizer", ctx.tokenizer or ctx.model,
        "--backend", "tensorrt",
        "--host", ctx.host,
        "--port", str(ctx.port),
        *opt_flags(ctx.options, SERVE_FLAGS),
        *ctx.extra_args,
    ]  # fmt: skip


SPEC = EngineSpec(
    name="trtllm",
    software="venv",
    model_format="trtllm",
    server_argv=server_argv,
    version_argv=py_version_argv("tensorrt_llm"),
    ignore_eos_style="ignore_eos",
    gpu=always(True),
    health_path="/health",
    readiness="health",
    readiness_timeout=900.0,
    prepare=("convert_checkpoint", "build_engine"),
    prepare_argv=prepare_argv,
    prepared_model=engine_dir,
    served_name=lambda ctx: Path(ctx.model).name,
    env_file="envs/tensorrt-llm.yaml",
    import_name="tensorrt_llm",
    source=SOURCE,
    source_for=("convert_checkpoint",),
    options=OPTIONS,
)
