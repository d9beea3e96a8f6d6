"""`transformers serve` (transformers >= 5) from its venv (`envs/transformers.yaml`).

The model path is passed as the positional `force_model`: it is loaded before the HTTP server
starts (so /health 200 means ready), and a request must then name exactly that string as its
`model` (anything else is a 400), so the served name is the path. `/v1/models` scans the HF
cache and answers 500 unless `HF_HUB_CACHE` exists: we point it at an empty folder. Unknown
request fields are a 422: exact lengths go through `generation_config` (a JSON string).
"""

from __future__ import annotations

from pathlib import Path

from enginebench.engines.spec import (
    EngineSpec,
    Option,
    ServerContext,
    device_not_cpu,
    py_version_argv,
)

OPTIONS = (
    Option("device", str, "cpu (its default), cuda, ..."),
    Option("dtype", str, "weights' and activations' dtype", flag="--dtype"),
    Option(
        "continuous_batching", bool, "batch requests as they come", flag="--continuous-batching"
    ),
    Option("attn_implementation", str, "sdpa, eager, ...", flag="--attn-implementation"),
    Option("cb_block_size", int, "KV cache block (tokens)", flag="--cb-block-size"),
    Option("cb_num_blocks", int, "KV cache blocks", flag="--cb-num-blocks"),
    Option("cb_max_batch_tokens", int, "tokens per batch", flag="--cb-max-batch-tokens"),
    # on CPU the CB cache defaults to 60% of *system* RAM (touched at startup): cap it
    Option(
        "cb_max_memory_percent",
        float,
        "share of memory for the KV cache",
        flag="--cb-max-memory-percent",
    ),
)


def server_argv(ctx: ServerContext) -> list[str]:
    return [
        ctx.require_python(), "-m", "transformers.cli.transformers", "serve", ctx.model,
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--device", str(ctx.options.get("device", "cpu")),
        *ctx.flags(OPTIONS),
    ]  # fmt: skip


def server_env(ctx: ServerContext) -> dict[str, str]:
    # An existing, empty hub cache: /v1/models answers 500 when the cache folder is missing.
    cache = Path(ctx.workdir or ".") / "hf-hub-cache"
    cache.mkdir(parents=True, exist_ok=True)
    return {"HF_HUB_CACHE": str(cache.resolve()), "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1"}


def served_name(ctx: ServerContext) -> str:
    return ctx.model  # the server is pinned to its force_model string


SPEC = EngineSpec(
    name="transformers",
    software="venv",
    model_format="hf",
    server_argv=server_argv,
    version_argv=py_version_argv("transformers"),
    ignore_eos_style="generation_config",
    gpu=device_not_cpu(),
    health_path="/health",
    readiness="health",
    lists_model=False,  # /v1/models lists the HF cache, not the served folder
    readiness_timeout=300.0,
    env=server_env,
    served_name=served_name,
    env_file="envs/transformers.yaml",
    import_name="transformers",
    options=OPTIONS,
)
