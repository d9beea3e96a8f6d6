"""Hugging Face TGI (`text-generation-launcher`). A Rust launcher + Python shards published
only as a container image (no PyPI/conda package): `software="container"`, never run here.

`options.runtime`: `apptainer` (default; runs in our process group, so the group kill reaches
it), `docker`, or `none` (the launcher is on PATH, e.g. inside the image). TGI has no request
field that forces an output length: lengths are measured, not pinned (`ignore_eos_style="none"`).
"""

from __future__ import annotations

from enginebench.engines.spec import EngineConfigError, EngineSpec, ServerContext, always

IMAGE = "ghcr.io/huggingface/text-generation-inference:3.3.6"
OPTION_FLAGS = (
    ("dtype", "--dtype"),
    ("max_concurrent_requests", "--max-concurrent-requests"),
    ("max_input_tokens", "--max-input-tokens"),
    ("max_total_tokens", "--max-total-tokens"),
    ("max_batch_prefill_tokens", "--max-batch-prefill-tokens"),
    ("num_shard", "--num-shard"),
    ("quantize", "--quantize"),
)


def _in_runtime(ctx: ServerContext, argv: list[str]) -> list[str]:
    runtime = str(ctx.options.get("runtime", "apptainer"))
    image = str(ctx.options.get("image", IMAGE))
    if runtime == "none":
        return argv
    if runtime == "apptainer":
        return ["apptainer", "exec", "--nv", "--bind", f"{ctx.model}:{ctx.model}:ro",
                f"docker://{image}", *argv]  # fmt: skip
    if runtime == "docker":
        # --init and --rm: SIGTERM to the docker client stops and removes the container
        return ["docker", "run", "--rm", "--init", "--gpus", "all", "--network", "host",
                "-v", f"{ctx.model}:{ctx.model}:ro", image, *argv[1:]]  # fmt: skip
    raise EngineConfigError(f"tgi: options.runtime must be apptainer, docker or none: {runtime!r}")


def server_argv(ctx: ServerContext) -> list[str]:
    launcher = [
        "text-generation-launcher",
        "--model-id", ctx.model,
        "--hostname", ctx.host,
        "--port", str(ctx.port),
        *ctx.flags(OPTION_FLAGS),
    ]  # fmt: skip
    return _in_runtime(ctx, launcher)


def version_argv(ctx: ServerContext) -> list[str]:
    return _in_runtime(ctx, ["text-generation-launcher", "--version"])


SPEC = EngineSpec(
    name="tgi",
    software="container",
    model_format="hf",
    server_argv=server_argv,
    version_argv=version_argv,
    ignore_eos_style="none",
    gpu=always(True),
    runs_here=False,
    health_path="/health",
    readiness="health",
    readiness_timeout=900.0,
    env=lambda ctx: {"HF_HUB_OFFLINE": "1"},
    served_name=lambda ctx: ctx.model,  # /v1/models lists the model id it was started with
    container_image=IMAGE,
    notes="container image only; no way to force exact output lengths",
)
