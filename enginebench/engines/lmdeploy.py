"""LMDeploy (`lmdeploy serve api_server`). CUDA only: never run on the CPU machines.

Two backends: TurboMind (C++, its default; 0.18.0's links CUDA 12's runtime and cuBLAS) and
PyTorch (`backend: pytorch`: Triton kernels, no native code; served on an H100,
docs/results/h100). Takes HF weights as they are; `ignore_eos` is a request field of its
OpenAI server; cached-token counts come on chat completions only.
"""

from __future__ import annotations

from enginebench.engines.spec import EngineSpec, Option, ServerContext, always, py_version_argv

OPTIONS = (
    # TurboMind (C++, lmdeploy's default: no flag unless set) or PyTorch (Triton kernels, no
    # native code of its own)
    Option("backend", str, "inference backend", flag="--backend", choices=("turbomind", "pytorch")),
    Option("session_len", int, "longest session (tokens)", flag="--session-len"),
    Option("max_batch_size", int, "most requests in a batch", flag="--max-batch-size"),
    Option(
        "cache_max_entry_count",
        float,
        "share of free GPU memory for the KV cache",
        flag="--cache-max-entry-count",
    ),
    Option("tp", int, "tensor-parallel GPUs", flag="--tp"),
    Option("dtype", str, "weights' and activations' dtype", flag="--dtype"),
)


def server_argv(ctx: ServerContext) -> list[str]:
    return [
        ctx.require_python(), "-m", "lmdeploy", "serve", "api_server", ctx.model,
        "--server-name", ctx.host,
        "--server-port", str(ctx.port),
        "--model-name", ctx.served_name,
        *ctx.flags(OPTIONS),
    ]  # fmt: skip


SPEC = EngineSpec(
    name="lmdeploy",
    software="venv",
    model_format="hf",
    server_argv=server_argv,
    version_argv=py_version_argv("lmdeploy"),
    ignore_eos_style="ignore_eos",
    gpu=always(True),
    health_path="/v1/models",
    readiness="models",
    readiness_timeout=900.0,
    env=lambda ctx: {"HF_HUB_OFFLINE": "1"},
    env_file="envs/lmdeploy.yaml",
    import_name="lmdeploy",
    options=OPTIONS,
)
