"""llama.cpp's C++ `llama-server` (built by `engines/build.py`; GGUF from `models/gguf.py`).

`-np N` parallel slots is its continuous batching; `/health` answers 503 while loading, 200
once ready. It honours `ignore_eos` (not `min_tokens`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enginebench.engines.spec import SHA256, EngineSpec, Option, ServerContext, TopLogprobs

DEFAULT_GIT_URL = "https://github.com/ggml-org/llama.cpp"

BACKENDS = ("cpu", "cuda")  # ggml's; the default first
# its build (where llama.cpp comes from, how it is built) and llama-server's flags (only when
# set; `server_args` may carry them instead)
OPTIONS = (
    Option(
        "source",
        str,
        "where the source comes from",
        default="pypi-sdist",
        choices=("pypi-sdist", "git"),
    ),
    Option("version", str, "source pypi-sdist: the llama-cpp-python sdist's version"),
    Option("sha256", str, "source pypi-sdist: the sdist's sha256 (checked)", pattern=SHA256),
    Option("git_url", str, "source git: the repository", default=DEFAULT_GIT_URL),
    Option("commit", str, "source git: a sha, tag or branch (a moving ref is locked)"),
    Option("backend", str, "ggml's backend", default=BACKENDS[0], choices=BACKENDS),
    Option("cuda_architectures", str, "backend cuda: CMAKE_CUDA_ARCHITECTURES", default="90"),
    Option("cmake_flags", list, "more CMake definitions", default=[]),
    Option("bin_dir", str, "prebuilt binaries (llama-server, llama-bench) instead of a build"),
    Option("parallel", int, "slots: continuous batching of N", flag="-np"),
    Option("ctx_size", int, "context of all slots together", flag="-c"),
    Option("threads", int, "CPU threads", flag="-t"),
    Option("n_gpu_layers", int, "layers offloaded to the GPU", flag="-ngl"),
)


def server_argv(ctx: ServerContext) -> list[str]:
    return [
        ctx.require_bin("llama-server"),
        "-m", ctx.model,
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--alias", ctx.served_name,
        "--metrics",  # its Prometheus counters at /metrics, scraped around each point
        *ctx.flags(OPTIONS),
    ]  # fmt: skip


def version_argv(ctx: ServerContext) -> list[str]:
    return [ctx.require_bin("llama-server"), "--version"]


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
    health_path="/health",
    metrics_path="/metrics",
    top_logprobs=TopLogprobs(max_k=20),  # each with its token id
    readiness="health",
    readiness_timeout=120.0,
    prepare=("convert_gguf", "quantize"),  # done by enginebench.models.gguf
    options=OPTIONS,
)
