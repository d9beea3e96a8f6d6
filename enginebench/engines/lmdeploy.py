"""LMDeploy (`lmdeploy serve api_server`, TurboMind backend). CUDA only: never run here.

Takes HF weights as they are (TurboMind converts at load time); `ignore_eos` is a request
field of its OpenAI server.
"""

from __future__ import annotations

from enginebench.engines.spec import EngineSpec, ServerContext, always, py_version_argv

OPTION_FLAGS = (
    ("backend", "--backend"),  # BACKENDS
    ("session_len", "--session-len"),
    ("max_batch_size", "--max-batch-size"),
    ("cache_max_entry_count", "--cache-max-entry-count"),
    ("tp", "--tp"),
    ("dtype", "--dtype"),
)


def server_argv(ctx: ServerContext) -> list[str]:
    return [
        ctx.require_python(), "-m", "lmdeploy", "serve", "api_server", ctx.model,
        "--server-name", ctx.host,
        "--server-port", str(ctx.port),
        "--model-name", ctx.served_name,
        *ctx.flags(OPTION_FLAGS),
    ]  # fmt: skip


SPEC = EngineSpec(
    name="lmdeploy",
    software="venv",
    model_format="hf",
    server_argv=server_argv,
    version_argv=py_version_argv("lmdeploy"),
    ignore_eos_style="ignore_eos",
    gpu=always(True),
    runs_here=False,
    health_path="/v1/models",
    readiness="models",
    readiness_timeout=900.0,
    env=lambda ctx: {"HF_HUB_OFFLINE": "1"},
    env_file="envs/lmdeploy.yaml",
    import_name="lmdeploy",
    # TurboMind (C++, its default) or PyTorch (Triton kernels, no native code of its own); the
    # default is left to lmdeploy (no --backend flag unless the config sets one)
    backends=("turbomind", "pytorch"),
    notes="TurboMind is CUDA-only; its wheels pin torch <= 2.12.1",
)
