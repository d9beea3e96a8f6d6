"""An already running OpenAI-compatible endpoint: nothing is started or stopped.

Config: `base_url` (e.g. https://host/v1 or http://127.0.0.1:8000), `api_key_env` (the name of
the variable holding the key; the key itself never enters config, logs or results), and
optionally `ignore_eos_style` when the endpoint honours one (default: none).
"""

from __future__ import annotations

from typing import get_args

from enginebench.engines.spec import EngineSpec, IgnoreEosStyle, Option, always

OPTIONS = (
    Option("base_url", str, "the endpoint (https://host/v1 or http://127.0.0.1:8000)"),
    Option("api_key_env", str, "the variable that holds its API key (never the key)"),
    Option(
        "ignore_eos_style",
        str,
        "how it pins output lengths, when it can",
        choices=get_args(IgnoreEosStyle),
    ),
)

SPEC = EngineSpec(
    name="openai",
    software="external",
    model_format="none",
    server_argv=None,
    version_argv=None,
    ignore_eos_style="none",
    gpu=always(False),
    health_path="/v1/models",
    readiness="models",
    readiness_timeout=60.0,
    options=OPTIONS,
)
