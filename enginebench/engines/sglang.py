"""SGLang (`python -m sglang.launch_server`). CUDA only: never run on the CPU machines.

Honours `ignore_eos` as an extra request field (its sampling params); /health is 200 once
the model is loaded; `--enable-cache-report` puts its radix cache's hits in
`usage.prompt_tokens_details`. Served on an H100 (docs/results/h100) with
`sampling_backend: pytorch` (FlashInfer's sampler JIT-compiles at first use).
"""

from __future__ import annotations

from enginebench.engines.spec import (
    EngineSpec,
    Option,
    ServerContext,
    TopLogprobs,
    always,
    py_version_argv,
)

OPTIONS = (
    Option("dtype", str, "weights' and activations' dtype", flag="--dtype"),
    Option("context_length", int, "longest context (tokens)", flag="--context-length"),
    Option(
        "mem_fraction_static",
        float,
        "share of GPU memory for weights and KV cache",
        flag="--mem-fraction-static",
    ),
    Option(
        "max_running_requests", int, "most requests running at once", flag="--max-running-requests"
    ),
    Option("tp", int, "tensor-parallel GPUs", flag="--tp"),
    # flashinfer's sampler (the default) JIT-compiles with nvcc at first use: `pytorch` does not
    Option("sampling_backend", str, "flashinfer or pytorch", flag="--sampling-backend"),
    Option("attention_backend", str, "fa3, flashinfer, triton, ...", flag="--attention-backend"),
)


def server_argv(ctx: ServerContext) -> list[str]:
    return [
        ctx.require_python(), "-m", "sglang.launch_server",
        "--model-path", ctx.model,
        "--served-model-name", ctx.served_name,
        "--host", ctx.host,
        "--port", str(ctx.port),
        # usage.prompt_tokens_details.cached_tokens: prompt tokens its radix cache served
        "--enable-cache-report",
        *ctx.flags(OPTIONS),
    ]  # fmt: skip


SPEC = EngineSpec(
    name="sglang",
    software="venv",
    model_format="hf",
    server_argv=server_argv,
    version_argv=py_version_argv("sglang"),
    ignore_eos_style="ignore_eos",
    gpu=always(True),
    health_path="/health",
    # read from SGLang 0.5.17's source, not yet run: temperature 0 is top_k 1 at temperature 1,
    # its logprobs plain log_softmax; tokens as their decoded text, the path's ids in the
    # choice's `token_ids` (`return_token_ids`)
    top_logprobs=TopLogprobs(max_k=20, extra={"return_token_ids": True}),
    readiness="models",
    readiness_timeout=900.0,
    env=lambda ctx: {"HF_HUB_OFFLINE": "1"},
    env_file="envs/sglang.yaml",
    import_name="sglang",
    options=OPTIONS,
)
