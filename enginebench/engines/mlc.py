"""MLC-LLM (`mlc_llm serve`). Its wheels live on its own index: never installed here.

Preparation (all from the HF folder, into one output folder per model x quant):
`convert_weight` (quantized weights), `gen_config` (mlc-chat-config.json + tokenizer),
`compile` (the model library, `<out>/lib.so`). The server lists the model under the string it
was given. Exact output lengths need `debug_config.ignore_eos`, which the server accepts only
with `--enable-debug`.
"""

from __future__ import annotations

from pathlib import Path

from enginebench.engines.spec import (
    EngineConfigError,
    EngineSpec,
    PrepareContext,
    ServerContext,
    always,
    py_version_argv,
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


def _mlc(ctx: PrepareContext) -> list[str]:
    return [ctx.require_python(), "-m", "mlc_llm"]


def quantization(quant: str) -> str:
    if quant not in QUANTIZATIONS:
        raise EngineConfigError(f"mlc: unknown quant {quant!r}; known: {', '.join(QUANTIZATIONS)}")
    return quant


def prepare_argv(step: str, ctx: PrepareContext) -> list[str]:
    quant = quantization(ctx.quant)  # every step's folder is one quant's: check it first
    device = str(ctx.options.get("device", "cuda"))
    if step == "convert_weight":
        return [*_mlc(ctx), "convert_weight", ctx.hf_dir,
                "--quantization", quant, "--device", device, "-o", ctx.out_dir]  # fmt: skip
    if step == "gen_config":
        template = str(ctx.options.get("conv_template", "LM"))  # LM: plain completion
        argv = [*_mlc(ctx), "gen_config", ctx.hf_dir, "--quantization", quant,
                "--conv-template", template, "-o", ctx.out_dir]  # fmt: skip
        for key in ("context_window_size", "prefill_chunk_size", "max_batch_size"):
            if ctx.options.get(key) is not None:
                argv += [f"--{key.replace('_', '-')}", str(ctx.options[key])]
        return argv
    if step == "compile":
        return [*_mlc(ctx), "compile", str(Path(ctx.out_dir) / "mlc-chat-config.json"),
                "--device", device, "-o", str(Path(ctx.out_dir) / LIB_NAME)]  # fmt: skip
    raise EngineConfigError(f"mlc: unknown preparation step {step!r}")


def prepared_model(ctx: PrepareContext) -> str:
    return ctx.out_dir


def server_argv(ctx: ServerContext) -> list[str]:
    overrides = ctx.options.get("overrides")  # e.g. "max_num_sequence=32;max_total_seq_length=8192"
    return [
        ctx.require_python(), "-m", "mlc_llm", "serve", ctx.model,
        "--model-lib", str(Path(ctx.model) / LIB_NAME),
        "--device", str(ctx.options.get("device", "cuda")),
        "--mode", str(ctx.options.get("mode", "server")),
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--enable-debug",  # lets requests carry debug_config.ignore_eos
        *(["--overrides", str(overrides)] if overrides else []),
        *ctx.extra_args,
    ]  # fmt: skip


SPEC = EngineSpec(
    name="mlc",
    software="venv",
    model_format="mlc",
    server_argv=server_argv,
    version_argv=py_version_argv("mlc_llm"),
    ignore_eos_style="debug_config",
    gpu=always(True),
    runs_here=False,
    health_path="/v1/models",
    readiness="models",
    readiness_timeout=900.0,
    prepare=("convert_weight", "gen_config", "compile"),
    prepare_argv=prepare_argv,
    prepared_model=prepared_model,
    served_name=lambda ctx: ctx.model,  # listed under the model argument as given
    env_file="envs/mlc-llm.yaml",
    import_name="mlc_llm",
    notes="wheels only on MLC's own index (unreachable here); exact lengths need --enable-debug",
)
