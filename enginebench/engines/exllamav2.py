"""ExLlamaV2 served by TabbyAPI (its OpenAI-compatible server). CUDA only: never run here.

TabbyAPI is not a package (its pyproject installs only dependencies): the server is `main.py`
of a checkout at a pinned commit (`source`, fetched by the workflow unless the config's
`source_dir` names a checkout), run with the venv's python from that folder.
Preparation: `convert_exl2` quantizes the HF folder to EXL2 at the bits of the quant label
(`4.0bpw` -> `-b 4.0`) with the calibration text exllamav2 ships (no download);
`convert_args` (a list) is appended, e.g. fewer calibration rows (`-r`, `-mr`, `-l`, `-ml`),
which changes the quantization's quality, not its speed. TabbyAPI loads
`<model-dir>/<model-name>` and lists it by that name; it honours `min_tokens` (and
`ban_eos_token`, aliased `ignore_eos`). Its usage carries its own `prompt_time` and
`completion_time` (seconds), no cached-token count.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from enginebench.engines.spec import (
    EngineConfigError,
    EngineSpec,
    Option,
    PrepareContext,
    ServerContext,
    always,
    dist_version_argv,
)

SOURCE = ("https://github.com/theroyallab/tabbyAPI", "01a5915a7bfd46d2cff6b20bade7f289024b11f6")
OPTIONS = (
    Option(
        "convert_args",
        list,
        "more arguments of convert_exl2 (calibration rows, lengths)",
        default=[],
    ),
    Option("max_seq_len", int, "longest context (tokens)", flag="--max-seq-len"),
    Option(
        "max_batch_size", int, "most requests at once (with flash-attn)", flag="--max-batch-size"
    ),
    Option("cache_mode", str, "FP16, Q8, Q6, Q4", flag="--cache-mode"),
    Option("chunk_size", int, "prompt tokens per forward pass", flag="--chunk-size"),
)


def bits_of(quant: str) -> str:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)bpw", quant)
    if not m:
        raise EngineConfigError(f"exllamav2: quant must look like 4.0bpw, got {quant!r}")
    return m.group(1)


def prepared_model(ctx: PrepareContext) -> str:
    return str(Path(ctx.out_dir) / f"exl2-{ctx.quant}")


def prepare_argv(step: str, ctx: PrepareContext) -> list[str]:
    if step != "convert_exl2":
        raise EngineConfigError(f"exllamav2: unknown preparation step {step!r}")
    extra = ctx.options.get("convert_args", [])
    return [ctx.require_python(), "-m", "exllamav2.conversion.convert_exl2",
            "-i", ctx.hf_dir, "-o", str(Path(ctx.out_dir) / "work"),
            "-cf", prepared_model(ctx), "-b", bits_of(ctx.quant), *extra]  # fmt: skip


def source_dir(ctx: ServerContext) -> str:
    """The TabbyAPI checkout, absolute: the server runs from it (its cwd)."""
    src = ctx.options.get("source_dir")
    if not src:
        raise EngineConfigError("exllamav2: options.source_dir (TabbyAPI checkout) is unset")
    return os.path.abspath(str(src))


def _abs_path(program: str) -> str:
    """A relative path made absolute; a bare command name is left to PATH."""
    return os.path.abspath(program) if os.sep in program else program


def server_argv(ctx: ServerContext) -> list[str]:
    # absolute: the workflow's paths (the fetched checkout, the venv, the prepared model) are
    # relative to its working directory, and the server starts in the checkout
    model = Path(os.path.abspath(ctx.model))
    return [
        _abs_path(ctx.require_python()), str(Path(source_dir(ctx)) / "main.py"),
        "--host", ctx.host,
        "--port", str(ctx.port),
        "--disable-auth", "true",  # loopback only
        "--model-dir", str(model.parent),
        "--model-name", model.name,
        "--backend", "exllamav2",
        *ctx.flags(OPTIONS),
    ]  # fmt: skip


SPEC = EngineSpec(
    name="exllamav2",
    software="venv",
    model_format="exl2",
    server_argv=server_argv,
    # importing exllamav2 compiles its CUDA extension: read the distribution's metadata instead
    version_argv=dist_version_argv("exllamav2"),
    ignore_eos_style="min_tokens",
    gpu=always(True),
    health_path="/health",
    readiness="models",
    readiness_timeout=900.0,
    prepare=("convert_exl2",),
    prepare_argv=prepare_argv,
    prepared_model=prepared_model,
    served_name=lambda ctx: Path(ctx.model).name,
    env_file="envs/exllamav2.yaml",
    import_name="exllamav2",
    source=SOURCE,
    source_for=("serve",),
    server_cwd=source_dir,
    options=OPTIONS,
)
