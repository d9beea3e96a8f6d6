"""MLC-LLM (`mlc_llm serve`), built by the workflow from a pinned source archive.

Its wheels live only on MLC's own index; the archive (envs/sources/, MANIFEST.md there) holds
mlc-llm at a pinned commit with its submodules, patched to build against PyPI's apache-tvm, whose
compiler generates code for the CPU (LLVM) and CUDA. `enginebench.engines.mlcbuild` builds it.

Preparation (all from the HF folder, into one output folder per model x quant):
`convert_weight` (quantized weights), `gen_config` (mlc-chat-config.json + tokenizer),
`compile` (the model library, `<out>/lib.so`, for the instance's device). The server lists the
model under the string it was given. Exact output lengths need `debug_config.ignore_eos`, which
the server accepts only with `--enable-debug`. Each response's `usage.extra` holds the engine's
own account (prefilled and decoded tokens, their rates), read by the load generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from enginebench.engines.spec import (
    SHA256,
    EngineConfigError,
    EngineSpec,
    Option,
    PrepareContext,
    ServerContext,
    TopLogprobs,
    device_not_cpu,
    dist_version_argv,
)

LIB_NAME = "lib.so"
# The names `mlc_llm convert_weight` / `gen_config` accept for --quantization (argparse choices:
# the keys of QUANTIZATION in mlc-ai/mlc-llm python/mlc_llm/quantization/quantization.py, read
# at commit 98d96718b636). Older releases spelled the AWQ mode q4f16_awq; it is now q4f16_autoawq.
QUANTIZATIONS = (
    "q0f16", "q0bf16", "q0f32",
    "q3f16_0", "q3f16_1",
    "q4f16_0", "q4f16_1", "q4bf16_0", "q4bf16_1", "q4f32_1", "q4f16_2",
    "q4f16_autoawq", "q4f16_ft",
    "e5m2_e5m2_f16", "e4m3_e4m3_f16", "e4m3_e4m3_f16_max_calibrate",
    "fp8_e4m3fn_bf16_block_scale",
)  # fmt: skip


# the source archive built when the config names none: mlc-llm 79d603f0 (2026-07-23) with its
# submodules, TVM = apache/tvm v0.26.0 (= PyPI apache-tvm 0.26.0, envs/mlc-llm.yaml)
ARCHIVE = (
    "envs/sources/mlc-llm-79d603f0-src.tar.xz",
    "609182d01a8e91255ecceb111bac5750e33b5fc0067da9642ae70174cb89b2d1",
    "79d603f085f50500e9509fa01785ffa7ecfaaa93",
)
# what the apache-tvm wheel generates code for (it has no ROCm, Vulkan, Metal or OpenCL), and
# the device where the config names none
DEVICES = ("cpu", "cuda")
DEFAULT_DEVICE = "cuda"
OPTIONS = (
    Option(
        "archive",
        str,
        "a source archive to build instead of the pinned one (with sha256 "
        "and commit; relative paths: to the workflow's folder)",
    ),
    Option("sha256", str, "the archive's sha256", pattern=SHA256),
    Option("commit", str, "the upstream commit the archive holds (recorded)"),
    Option("device", str, "cpu or cuda[:N]: what the model library is compiled for and served on"),
    Option("opt", str, "mlc_llm compile --opt (cuda's default avoids cuBLAS, CUTLASS, FlashInfer)"),
    Option("conv_template", str, "gen_config --conv-template (LM: plain completion)"),
    Option("context_window_size", int, "gen_config: longest context"),
    Option("prefill_chunk_size", int, "gen_config: prompt tokens per prefill"),
    Option("max_batch_size", int, "gen_config: most requests in a batch"),
    Option("overrides", str, "serve --overrides (max_num_sequence=32;...)"),
    Option("mode", str, "serve --mode", choices=("local", "interactive", "server")),
)
# the compiler's optimization flags where the config gives no `opt`: MLC's default O2 fails with
# this TVM on CUDA ("cuBLAS is not enabled": the wheel has no cuBLAS, CUTLASS or FlashInfer)
DEFAULT_OPT = {"cuda": "flashinfer=0;cublas_gemm=0;cutlass=0;cudagraph=1"}


def device(options: Mapping[str, Any]) -> str:
    """The device option (`cpu`, `cuda`, `cuda:1`), checked against what TVM can target."""
    value = str(options.get("device", DEFAULT_DEVICE))
    if _kind(value) not in DEVICES:
        raise EngineConfigError(
            f"mlc: device {value!r}: the apache-tvm wheel generates code for "
            f"{' and '.join(DEVICES)} only"
        )
    return value


def _kind(dev: str) -> str:
    """`cuda` of `cuda:1`."""
    return dev.split(":")[0]


def _mlc(ctx: PrepareContext) -> list[str]:
    return [ctx.require_python(), "-m", "mlc_llm"]


# kernels the CPU (LLVM) target has none of: FP8 (Hopper/Ada) and FasterTransformer's CUDA
# kernels. The rest ran on the CPU here (q0f32, q4f32_1, q4f16_1: f16 through LLVM)
CUDA_ONLY = ("q4f16_ft", "e5m2_e5m2_f16", "e4m3_e4m3_f16", "e4m3_e4m3_f16_max_calibrate",
             "fp8_e4m3fn_bf16_block_scale")  # fmt: skip


def quantization(quant: str, dev: str) -> str:
    if quant not in QUANTIZATIONS:
        raise EngineConfigError(f"mlc: unknown quant {quant!r}; known: {', '.join(QUANTIZATIONS)}")
    if quant in CUDA_ONLY and _kind(dev) != "cuda":
        cpu = [q for q in QUANTIZATIONS if q not in CUDA_ONLY]
        raise EngineConfigError(
            f"mlc: quant {quant!r} has CUDA kernels only (device {dev!r}); on it use one of "
            f"{', '.join(cpu)}"
        )
    return quant


def prepare_argv(step: str, ctx: PrepareContext) -> list[str]:
    dev = device(ctx.options)
    quant = quantization(ctx.quant, dev)  # every step's folder is one quant's: check it first
    if step == "convert_weight":
        return [*_mlc(ctx), "convert_weight", ctx.hf_dir,
                "--quantization", quant, "--device", dev, "-o", ctx.out_dir]  # fmt: skip
    if step == "gen_config":
        template = str(ctx.options.get("conv_template", "LM"))  # LM: plain completion
        argv = [*_mlc(ctx), "gen_config", ctx.hf_dir, "--quantization", quant,
                "--conv-template", template, "-o", ctx.out_dir]  # fmt: skip
        for key in ("context_window_size", "prefill_chunk_size", "max_batch_size"):
            if ctx.options.get(key) is not None:
                argv += [f"--{key.replace('_', '-')}", str(ctx.options[key])]
        return argv
    if step == "compile":
        opt = ctx.options.get("opt", DEFAULT_OPT.get(_kind(dev)))
        return [*_mlc(ctx), "compile", str(Path(ctx.out_dir) / "mlc-chat-config.json"),
                "--device", dev, *(["--opt", str(opt)] if opt else []),
                "-o", str(Path(ctx.out_dir) / LIB_NAME)]  # fmt: skip
    raise EngineConfigError(f"mlc: unknown preparation step {step!r}")


def prepared_model(ctx: PrepareContext) -> str:
    return ctx.out_dir


def server_argv(ctx: ServerContext) -> list[str]:
    overrides = ctx.options.get("overrides")  # e.g. "max_num_sequence=32;max_total_seq_length=8192"
    return [
        ctx.require_python(), "-m", "mlc_llm", "serve", ctx.model,
        "--model-lib", str(Path(ctx.model) / LIB_NAME),
        "--device", device(ctx.options),
        "--mode", str(ctx.options.get("mode", "server")),
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--enable-debug",  # lets requests carry debug_config.ignore_eos
        *(["--overrides", str(overrides)] if overrides else []),
        *ctx.extra_args,
    ]  # fmt: skip


SPEC = EngineSpec(
    name="mlc",
    software="wheel",
    model_format="mlc",
    server_argv=server_argv,
    # the installed distribution's version: mlc_llm.__version__ says 0.1.dev0 in every build
    version_argv=dist_version_argv("mlc_llm"),
    ignore_eos_style="debug_config",
    gpu=device_not_cpu(default=DEFAULT_DEVICE),
    health_path="/v1/models",
    # COMPLETION_MAX_TOP_LOGPROBS; tokens as text, leading spaces cut (" mean" is "mean"),
    # mapped back to ids through the tokenizer; at temperature 0 its logprobs are the sampler's
    # one-hot (measured: 0.0 and -23.03)
    top_logprobs=TopLogprobs(max_k=5, greedy=False, stripped=True),
    readiness="models",
    readiness_timeout=900.0,
    prepare=("convert_weight", "gen_config", "compile"),
    prepare_argv=prepare_argv,
    prepared_model=prepared_model,
    served_name=lambda ctx: ctx.model,  # listed under the model argument as given
    env_file="envs/mlc-llm.yaml",
    import_name="tvm",  # its environment: the compiler; mlc_llm is built into it (build_mlc)
    source_archive=ARCHIVE,
    options=OPTIONS,
)
