"""llama.cpp's C++ `llama-server` (built by `engines/build.py`; GGUF from `models/gguf.py`).

`-np N` parallel slots is its continuous batching; `/health` answers 503 while loading, 200
once ready. It honours `ignore_eos` (not `min_tokens`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enginebench.engines.spec import EngineSpec, ServerContext

# config key -> llama-server flag (only when set; config `server_args` may carry them instead)
OPTION_FLAGS = (
    ("parallel", "-np"),
    ("ctx_size", "-c"),
    ("threads", "-t"),
    ("n_gpu_layers", "-ngl"),
)


def server_argv(ctx: ServerContext) -> list[str]:
    return [
        ctx.require_bin("llama-server"),
        "-m", ctx.model,
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--alias", ctx.served_name,
        *ctx.flags(OPTION_FLAGS),
    ]  # fmt: skip


def version_argv(ctx: ServerContext) -> list[str]:
    return [ctx.require_bin("llama-server"), "--version"]


BACKENDS = ("cpu", "cuda")  # ggml's; the default first


def uses_gpu(config: Mapping[str, Any]) -> bool:
    return str(config.get("backend", BACKENDS[0])).lower() != "cpu"


SPEC = EngineSpec(
    name="llamacpp",
    software="cmake",
    model_format="gguf",
    server_argv=server_argv,
    version_argv=version_argv,
    ignore_eos_style="ignore_eos",
    gpu=uses_gpu,
    runs_here=True,
    health_path="/health",
    readiness="health",
    readiness_timeout=120.0,
    prepare=("convert_gguf", "quantize"),  # done by enginebench.models.gguf
    backends=BACKENDS,
    notes="llama-server; -np N slots = continuous batching; min_tokens is ignored",
)
