"""Hugging Face TGI (`text-generation-launcher`). A Rust launcher + Python shards published
only as a container image (no PyPI/conda package): `software="container"`, never run here.

It runs from its pinned image (`container_image`, docker) unless the config's `container:`
names another image or runtime (`engines/container.py` wraps the launcher's argv). TGI has no
request field that forces an output length: lengths are measured, not pinned
(`ignore_eos_style="none"`).
"""

from __future__ import annotations

from enginebench.engines.spec import EngineSpec, Option, ServerContext, always

IMAGE = "ghcr.io/huggingface/text-generation-inference:3.3.6"
OPTIONS = (
    Option("dtype", str, "weights' dtype", flag="--dtype"),
    Option(
        "max_concurrent_requests",
        int,
        "requests admitted at once",
        flag="--max-concurrent-requests",
    ),
    Option("max_input_tokens", int, "longest prompt", flag="--max-input-tokens"),
    Option("max_total_tokens", int, "longest prompt + output", flag="--max-total-tokens"),
    Option(
        "max_batch_prefill_tokens",
        int,
        "prompt tokens per prefill batch",
        flag="--max-batch-prefill-tokens",
    ),
    Option("num_shard", int, "tensor-parallel GPUs", flag="--num-shard"),
    Option("quantize", str, "awq, gptq, eetq, ...", flag="--quantize"),
)


def server_argv(ctx: ServerContext) -> list[str]:
    return [
        "text-generation-launcher",
        "--model-id", ctx.model,
        "--hostname", ctx.host,
        "--port", str(ctx.port),
        *ctx.flags(OPTIONS),
    ]  # fmt: skip


def version_argv(ctx: ServerContext) -> list[str]:
    return ["text-generation-launcher", "--version"]


SPEC = EngineSpec(
    name="tgi",
    software="container",
    model_format="hf",
    server_argv=server_argv,
    version_argv=version_argv,
    ignore_eos_style="none",
    gpu=always(True),
    health_path="/health",
    readiness="health",
    readiness_timeout=900.0,
    env=lambda ctx: {"HF_HUB_OFFLINE": "1"},
    served_name=lambda ctx: ctx.model,  # /v1/models lists the model id it was started with
    container_image=IMAGE,
    options=OPTIONS,
)
