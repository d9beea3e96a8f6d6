"""Engine name -> `EngineSpec`, and `enginebench options`: what each engine takes."""

from __future__ import annotations

import sys
from collections.abc import Sequence

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


def options_text(names: Sequence[str]) -> str:
    """Each engine's own options (`enginebench options [ENGINE ...]`), beside the keys every
    engine takes (the config schema's)."""
    lines = []
    for name in names or sorted(ENGINES):
        spec = get_engine(name)
        lines.append(f"{name}:")
        width = max((len(o.name) for o in spec.options), default=0)
        for o in spec.options:
            extra = [f"default {o.default!r}"] if o.default is not None else []
            extra += [f"one of {', '.join(map(str, o.choices))}"] if o.choices else []
            extra += [f"sets {o.flag}"] if o.flag else []
            tail = f" ({'; '.join(extra)})" if extra else ""
            lines.append(f"  {o.name:<{width}}  {o.type.__name__:<5} {o.help}{tail}")
        if not spec.options:
            lines.append("  (none of its own)")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if any(a.startswith("-") for a in argv):
        print("usage: enginebench options [ENGINE ...]  (every engine's own config options)")
        return 0
    try:
        print(options_text(list(argv)))
    except UnknownEngineError as exc:
        print(f"enginebench options: {exc}", file=sys.stderr)
        return 2
    return 0
