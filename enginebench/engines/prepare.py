"""Run one engine's model-preparation step (MLC, TensorRT-LLM, EXL2), and name what it makes.

llama.cpp's GGUF steps have their own rules (enginebench.models.gguf); every other engine that
needs prepared weights declares `prepare` / `prepare_argv` in its `EngineSpec`, and the workflow
runs each step as one job through `run_step`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from enginebench.engines.registry import get_engine
from enginebench.engines.spec import EngineConfigError, PrepareContext
from enginebench.proc import run

# formats whose weights an engine's own steps prepare from the HF folder
PREPARED_FORMATS = ("mlc", "trtllm", "exl2")


class PrepareError(RuntimeError):
    """A preparation step ran but did not make what the server loads; the message is one line."""


def check_quant(kind: str, quant: str, options: Mapping[str, Any]) -> None:
    """Raise EngineConfigError when the engine's steps cannot be built for `quant`."""
    spec = get_engine(kind)
    ctx = PrepareContext(hf_dir="hf", out_dir="out", quant=quant, options=options, python="python")
    spec.prepare_commands(ctx)


def run_step(
    kind: str, step: str, ctx: PrepareContext, log: Path, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run one step's exact argv (never a shell string), with `env` over the environment; the
    output goes to `log`."""
    spec = get_engine(kind)
    if step not in spec.prepare:
        raise EngineConfigError(f"{kind}: no preparation step {step!r}; steps: {spec.prepare}")
    argv = spec.prepare_argv(step, ctx)
    Path(ctx.out_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    run(argv, what=f"{kind} {step}", log=log, env=os.environ | dict(env or {}))
    # some converters (exllamav2's) print their error and exit 0: the last step must have made
    # what the server loads
    if step == spec.prepare[-1] and not Path(made := prepared_model(kind, ctx)).exists():
        raise PrepareError(f"{kind} {step} exited 0 but made no {made}; see {log}")
    return {"step": step, "argv": argv, "seconds": round(time.monotonic() - t0, 1)}


def prepared_model(kind: str, ctx: PrepareContext) -> str:
    """The path the engine's server loads once every step ran."""
    spec = get_engine(kind)
    return spec.prepared_model(ctx) if spec.prepared_model else ctx.out_dir
