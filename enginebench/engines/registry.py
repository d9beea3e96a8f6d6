"""Engine name -> `EngineSpec`."""

from __future__ import annotations

from enginebench.engines import (
    exllamav2,
    llamacpp,
    lmdeploy,
    mlc,
    openai,
    sglang,
    tgi,
    transformers,
    trtllm,
    vllm,
)
from enginebench.engines.spec import EngineSpec

ENGINES: dict[str, EngineSpec] = {
    m.SPEC.name: m.SPEC
    for m in (llamacpp, vllm, transformers, sglang, mlc, lmdeploy, trtllm, tgi, exllamav2, openai)
}


class UnknownEngineError(KeyError):
    def __str__(self) -> str:  # KeyError's default repr-quotes the message
        return str(self.args[0])


def get_engine(name: str) -> EngineSpec:
    try:
        return ENGINES[name]
    except KeyError:
        known = ", ".join(sorted(ENGINES))
        raise UnknownEngineError(f"unknown engine {name!r}; known engines: {known}") from None
