"""`RunSpec`: everything one served sweep is, as one frozen value.

The plan builds it for each run (`Plan.run_spec`) and the workflow hands it to the serve job as
one parameter (`as_param`: builtins only, so Snakemake's rerun trigger sees every field); the
`serve-sweep` CLI builds the same value from its flags (`from_args`). Its points are the plan's,
built once. What only the job's inputs can tell (the built software's interpreter and
environment, the model's hash, the commits run) is added by `resolved`, at the job's start.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from enginebench.engines.source import checkout_commit
from enginebench.points import SweepPoint, parse_spec
from enginebench.slo_search import Search

SLO_METRICS = ("ttft", "tpot")


def sweep_bench_args(sweep: Mapping[str, Any]) -> tuple[str, ...]:
    """`enginebench bench` flags that a config sweep sets for all its points: `min_duration`
    (too_short below it), `slo` ({ttft_ms, tpot_ms}: goodput counts the requests within
    both, as `vllm bench serve --goodput`) and a sessions workload's think time."""
    args: list[str] = []
    if sweep.get("min_duration") is not None:
        args += ["--min-duration", f"{sweep['min_duration']:g}"]
    if sweep.get("think_time_s") is not None:  # multi-turn sessions
        args += ["--think-time", f"{sweep['think_time_s']:g}"]
    if sweep.get("think_time_dist") is not None:
        args += ["--think-time-dist", sweep["think_time_dist"]]
    slo = sweep.get("slo") or {}
    if slo:
        args += ["--goodput", *(f"{m}:{slo[f'{m}_ms']:g}" for m in SLO_METRICS if f"{m}_ms" in slo)]
    return tuple(args)


@dataclass(frozen=True)
class RunSpec:
    engine: str  # the instance: its name under the config's `engines:` (results/{engine}/...)
    model: str  # what the server loads (ServerContext.model); the model name for `openai`
    out_dir: str  # <point>.json / .jsonl
    prompts_file: str  # "" for a trace's replay
    points: tuple[SweepPoint, ...] = ()
    trace: Mapping[str, Any] | None = None  # a trace's replay: `path`, --trace-* keys (config's)
    ramp: Mapping[str, Any] | None = None  # rate points rise from `start_rps` (`strategy`)
    search: Search | None = None  # the adaptive SLO search, after the fixed points
    # fidelity's collection instead of points: `num_prompts`, `max_tokens`, `top_logprobs` and
    # `out`, the records' file (enginebench.fidelity)
    fidelity: Mapping[str, Any] | None = None
    kind: str = ""  # the engine it is an instance of (EngineSpec.name); default: `engine`
    served_name: str | None = None  # default: the model folder's name
    quant: str = ""
    sweep: str = ""  # the named sweep (config `sweeps:`)
    tokenizer: str | None = None
    warmups: int = 0
    # a rate point above one that stopped early (over-saturated) is not run (enginebench.sweep)
    skip_past_saturation: bool = False
    seed: int = 0
    endpoint: str = "/v1/completions"
    bench_args: tuple[str, ...] = ()  # more `enginebench bench` flags, for every point
    ignore_eos_style: str | None = None  # default: the engine's
    server_args: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)  # the engine's own options
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()  # names passed through to the server, never written
    bin_dir: str | None = None
    python: str | None = None  # the engine's interpreter
    source_dir: str | None = None  # the checkout of code it runs (provenance: its commit)
    readiness_timeout: float | None = None  # default: the engine's
    host: str = "127.0.0.1"
    port: int | None = None  # default: a free port
    base_url: str | None = None  # an endpoint that runs already
    api_key_env: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)  # provenance: model identity, ...
    server_log: str | None = None  # default <out_dir>/server.log
    server_json: str | None = None  # default <out_dir>/server.json
    hash_cache: str | None = None  # where weights_sha256 remembers the model's hash
    workdir: str | None = None  # server scratch; default: a temporary folder

    def __post_init__(self) -> None:
        fix = object.__setattr__  # frozen: normalized once, here
        fix(self, "kind", self.kind or self.engine)
        for name in ("points", "bench_args", "server_args", "secret_env"):
            fix(self, name, tuple(getattr(self, name)))

    def as_param(self) -> dict[str, Any]:
        """Builtins only (Snakemake compares a parameter by its repr; a dataclass it skips)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["points"] = [asdict(p) for p in self.points]
        data["search"] = asdict(self.search) if self.search else None
        for name in ("bench_args", "server_args", "secret_env"):
            data[name] = list(data[name])
        data["options"], data["env"] = dict(self.options), dict(self.env)
        data["metadata"] = dict(self.metadata)
        # as before they existed: no job reruns for a key it does not use
        if not data["skip_past_saturation"]:
            del data["skip_past_saturation"]
        for key in ("trace", "ramp", "fidelity"):
            if data[key] is None:
                del data[key]
            else:
                data[key] = dict(data[key])
        return data

    @classmethod
    def from_param(cls, data: Mapping[str, Any]) -> RunSpec:
        d = dict(data)
        d["points"] = tuple(
            p if isinstance(p, SweepPoint) else SweepPoint(**{**p, "load": float(p["load"])})
            for p in d.get("points", ())
        )
        if isinstance(d.get("search"), Mapping):
            d["search"] = Search(**d["search"])
        return cls(**d)

    def resolved(
        self, software: Mapping[str, Any], model_source: Mapping[str, Any] | None = None
    ) -> RunSpec:
        """With what the job's inputs say, at its start: the software the workflow made
        (`software.json`: a built venv's interpreter and PYTHONPATH, a llama.cpp build's commit),
        the model's source record (its hash) and the commit of `source_dir`."""
        from enginebench.models.sources import model_sha  # loads huggingface_hub: not when planning

        meta = dict(self.metadata)
        meta["engine_commit"] = (software.get("source") or {}).get("commit")
        meta["source_commit"] = checkout_commit(self.source_dir)
        if model_source is not None:
            meta["model_source"] = model_source.get("source")
            meta["model_sha"] = model_sha(dict(model_source))
        return replace(
            self,
            env={**software.get("env", {}), **self.env},  # a built wheel's PYTHONPATH, then ours
            python=software.get("python") or self.python,
            metadata=meta,
        )


# the CLI -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="enginebench serve-sweep",
        description="Start an engine's server, warm up, run sweep points in order, stop it.",
    )
    p.add_argument("--config", help="JSON file with RunSpec fields (flags override it)")
    p.add_argument("--engine", help="the instance's name (results, provenance)")
    p.add_argument("--kind", help="the engine it is an instance of (default: --engine)")
    p.add_argument("--model", help="what the server loads (GGUF file, HF folder, ...)")
    p.add_argument("--served-model-name", dest="served_name")
    p.add_argument("--quant")
    p.add_argument("--sweep", help="the named sweep these points belong to (provenance)")
    p.add_argument("--tokenizer", help="HF tokenizer folder for client-side token counts")
    p.add_argument("--prompts-file", help="materialized prompts (JSONL)")
    p.add_argument("--out-dir", help="where <point>.json/.jsonl and server.json go")
    p.add_argument("--server-log")
    p.add_argument("--server-json", help="default: <out-dir>/server.json")
    p.add_argument("--hash-cache", help="folder that remembers the model's sha256 across runs")
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one server argument, appended verbatim (use --server-arg=--flag)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine option (JSON value when it parses)",
    )
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this variable through to the server; never written",
    )
    p.add_argument("--bin-dir")
    p.add_argument("--python", help="the engine venv's python")
    p.add_argument("--source-dir", help="the checkout the engine's code runs from (its commit)")
    p.add_argument("--readiness-timeout", type=float)
    p.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="SPEC",
        help="rate=R[,num_prompts=N,burstiness=B,max_concurrency=C] or "
        "conc=N[,num_prompts=N,duration=S]; run in the given order",
    )
    p.add_argument("--num-prompts", type=int, help="default num_prompts of --point")
    p.add_argument("--burstiness", type=float, help="default burstiness of --point")
    p.add_argument("--warmups", type=int)
    p.add_argument(
        "--skip-past-saturation",
        action="store_true",
        default=None,
        help="do not run a rate point above one that stopped early (over-saturated)",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--endpoint")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--base-url")
    p.add_argument("--api-key-env")
    p.add_argument("--ignore-eos-style")
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--bench-arg", action="append", default=[], metavar="ARG")
    p.add_argument("--workdir")
    return p


_SCALARS = (
    "engine", "kind", "model", "served_name", "quant", "sweep", "tokenizer", "prompts_file",
    "out_dir", "server_log", "server_json", "hash_cache", "bin_dir", "python", "source_dir",
    "readiness_timeout", "warmups", "skip_past_saturation", "seed", "endpoint", "host", "port",
    "base_url", "api_key_env", "ignore_eos_style", "workdir",
)  # fmt: skip


def _kv(items: Sequence[str], flag: str, parse_json: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"serve-sweep: {flag} {item!r} is not KEY=VALUE")
        if parse_json:
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out


def from_args(argv: Sequence[str]) -> RunSpec:
    """The RunSpec of `serve-sweep`'s flags, over its `--config` file (`as_param`'s JSON)."""
    a = build_parser().parse_args(list(argv))
    base: dict[str, Any] = json.loads(Path(a.config).read_text()) if a.config else {}
    defaults = {"num_prompts": a.num_prompts, "burstiness": a.burstiness}
    defaults = {k: v for k, v in defaults.items() if v is not None}
    if a.point:
        base["points"] = [parse_spec(s, defaults) for s in a.point]
    for name in _SCALARS:
        if getattr(a, name) is not None:
            base[name] = getattr(a, name)
    base["server_args"] = [*base.get("server_args", []), *a.server_arg]
    base["options"] = {**base.get("options", {}), **_kv(a.option, "--option", parse_json=True)}
    base["env"] = {**base.get("env", {}), **_kv(a.env, "--env")}
    base["secret_env"] = [*base.get("secret_env", []), *a.secret_env]
    base["metadata"] = {**base.get("metadata", {}), **_kv(a.metadata, "--metadata")}
    base["bench_args"] = [*base.get("bench_args", []), *a.bench_arg]
    needed = ("engine", "model", "out_dir", *(() if base.get("trace") else ("prompts_file",)))
    missing = [k for k in needed if not base.get(k)]
    if missing:
        raise SystemExit(
            f"serve-sweep: missing {', '.join('--' + m.replace('_', '-') for m in missing)}"
        )
    if not base.get("points") and not base.get("search"):
        raise SystemExit("serve-sweep: no sweep points (--point rate=1 ... or conc=4 ...)")
    return RunSpec.from_param(base)
