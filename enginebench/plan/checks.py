"""The config checks the schema cannot make: names that refer to each other, quantizations an
engine takes, files that must exist. Each failure is one line, `config: <where>: <what and the
fix>`, raised before any job is planned."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from enginebench.engines import container
from enginebench.engines.prepare import PREPARED_FORMATS, check_quant
from enginebench.engines.registry import ENGINES
from enginebench.engines.source import check_ref
from enginebench.engines.spec import EngineConfigError, EngineSpec, FlagClashError, ServerContext
from enginebench.models.gguf import QUANT_TYPES
from enginebench.points import SweepPoint

if TYPE_CHECKING:
    from enginebench.plan.instances import Instance
    from enginebench.plan.plan import Plan

HF_FORMATS = ("hf",)
GGUF_OUTTYPES = ("f16", "bf16", "f32")
SOURCE_KEYS = ("source_url", "source_ref")
# the keys of an `engines:` entry every engine takes (typed by the schema); the rest are each
# engine's own (EngineSpec.options), and source_url / source_ref / source_dir are an engine's
# that runs code from a checkout
COMMON_KEYS = ("kind", "python", "container", "env_file", "server_args", "env", "gpu",
               "readiness_timeout")  # fmt: skip


class ConfigError(ValueError):
    """A config the workflow cannot plan (the message is the one line to show)."""


def fail(msg: str) -> NoReturn:
    raise ConfigError(f"config: {msg}")


def check_engines(config: Mapping[str, Any]) -> None:
    """Every instance names a known engine and a checkout it can have (before anything is
    derived from its engine's declaration)."""
    for name, eng in config["engines"].items():
        kind = eng.get("kind", name)
        if kind not in ENGINES:
            what = f"kind {kind!r}" if "kind" in eng else "engine"
            fail(
                f"engines.{name}: unknown {what}; known: {', '.join(sorted(ENGINES))} "
                "(an instance of one: any name, with `kind: <engine>`)"
            )
        _check_source(name, eng)
        _check_options(name, eng)


def _check_options(name: str, eng: Mapping[str, Any]) -> None:
    """Every key is one its engine reads, of the type it reads: a misspelt option would be
    ignored in silence (`max_num_seq` for `max_num_seqs`)."""
    spec = ENGINES[eng.get("kind", name)]
    own = {o.name: o for o in spec.options}
    known = [*COMMON_KEYS, *own, *((*SOURCE_KEYS, "source_dir") if spec.source else ())]
    for key, value in eng.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            fail(
                f"engines.{name}.{key}: {spec.name} has no such option; {hint}"
                f"its own: {', '.join(own) or 'none'} (enginebench/engines/{spec.name}.py)"
            )
        if key in own and (problem := own[key].problem(value)):
            fail(f"engines.{name}.{key}: {problem}")


def _check_source(name: str, eng: Mapping[str, Any]) -> None:
    """`source_url` / `source_ref` override the checkout an engine declares; `source_dir`
    names one of the user's own instead (then nothing is fetched)."""
    given = [k for k in SOURCE_KEYS if k in eng]
    if ENGINES[eng.get("kind", name)].source is None:
        if given:
            fail(f"engines.{name}.{given[0]}: {name} runs no code from a git checkout")
        return
    if given and eng.get("source_dir"):
        fail(
            f"engines.{name}: give either source_dir (your checkout) or "
            f"{'/'.join(given)} (fetched by the workflow), not both"
        )
    if not isinstance(eng.get("source_url", ""), str) or eng.get("source_url") == "":
        fail(f"engines.{name}.source_url: a git URL (string)")
    if "source_ref" in eng:
        if not isinstance(eng["source_ref"], str):
            fail(f"engines.{name}.source_ref: a tag or commit sha, as a quoted string")
        try:
            check_ref(eng["source_ref"])
        except ValueError as exc:
            fail(f"engines.{name}.source_ref: {exc}")


def check_plan(plan: Plan, points: Mapping[str, Sequence[SweepPoint]]) -> None:
    """Benchmarks, sweeps and instances against each other (`points`: each sweep's)."""
    config = plan.config
    for i, bench in enumerate(config["benchmarks"]):
        where = f"benchmarks[{i}]"
        engine, model = bench["engine"], bench["model"]
        if engine not in config["engines"]:
            known = ", ".join(sorted(config["engines"]))
            fail(
                f"{where}.engine: {engine!r} has no entry under `engines:` (configured: "
                f"{known}); add one, e.g. {engine}: {{kind: llamacpp, ...}}"
            )
        if model not in config["models"]:
            fail(f"{where}.model: {model!r} is not defined under `models:`")
        for quant in bench["quants"]:
            _check_quant(plan, where, engine, model, quant)
        for sweep in bench["sweeps"]:
            if sweep not in config["sweeps"]:
                fail(
                    f"{where}.sweeps: {sweep!r} is not defined under `sweeps:`; "
                    f"defined: {', '.join(sorted(config['sweeps']))}"
                )
    _check_workloads(plan)
    if _asks_fidelity(plan) and config["workload"]["dataset"] == "trace":
        fail(
            "workload: fidelity sends the first prompts of the top-level workload's prompt file, "
            "and a trace has none; give the trace to the sweeps that replay it "
            "(sweeps.<name>.workload) or set `fidelity: false` on the benchmarks"
        )
    runs = plan.runs
    if len(set(runs)) < len(runs):
        dup = next(r for r in runs if runs.count(r) > 1)
        fail(f"benchmarks: {'/'.join(dup)} is listed twice; list each combination once")
    for name, sweep in config["sweeps"].items():
        _check_sweep(name, sweep, [p.name for p in points[name]])
    for name in config["engines"]:
        _check_instance(plan, name)


def _asks_fidelity(plan: Plan) -> bool:
    return any(map(plan.asks_fidelity, plan.config["benchmarks"]))


def _check_workloads(plan: Plan) -> None:
    named: dict[str, dict[str, Any]] = {}
    if _asks_fidelity(plan):  # fidelity's prompts: a sweep's other workload needs its own name
        named[plan.config["workload"]["name"]] = plan.config["workload"]
    for sweep in sorted({run.sweep for run in plan.runs}):
        workload = plan.workload_of(sweep)
        where = (
            f"sweeps.{sweep}.workload" if "workload" in plan.config["sweeps"][sweep] else "workload"
        )
        if workload["prefix_len"] and workload["dataset"] != "random":
            fail(
                f"{where}.prefix_len: only the random dataset has a shared prefix "
                f"(dataset is {workload['dataset']}); drop prefix_len"
            )
        if workload["prefix_groups"] > 1 and not workload["prefix_len"]:
            fail(
                f"{where}.prefix_groups: {workload['prefix_groups']} groups of no prefix; set "
                "prefix_len (the tokens each group shares) or drop prefix_groups"
            )
        entry = plan.config["sweeps"][sweep]
        trace, speedups = workload["dataset"] == "trace", entry.get("trace_speedups")
        if trace and not workload.get("dataset_path"):
            fail(f"{where}.dataset_path: a trace workload replays a file; name it")
        if trace and not speedups:
            fail(
                f"sweeps.{sweep}: a trace workload is replayed by trace_speedups; set "
                "trace_speedups: [1] and request_rates: [], concurrency: []"
            )
        if speedups and not trace:
            fail(
                f"sweeps.{sweep}.trace_speedups: replays a trace; give the sweep a workload "
                "with dataset: trace, or drop trace_speedups"
            )
        if workload["dataset"] == "sessions":
            _check_sessions(f"sweeps.{sweep}", where, workload, entry)
        elif workload.get("turns") or entry.get("think_time_s") is not None:
            fail(f"{where}.turns, think_time_s: only read by dataset: sessions; drop them")
        if workload.get("trace") and not trace:
            fail(f"{where}.trace: only read by dataset: trace; drop it or set dataset: trace")
        if named.setdefault(workload["name"], workload) != workload:
            fail(
                f"{where}.name: {workload['name']!r} names two different workloads; give "
                "each its own name (prompt files are kept by workload name)"
            )


def _check_sessions(
    at: str, where: str, workload: Mapping[str, Any], sweep: Mapping[str, Any]
) -> None:
    """Sessions run closed loop, each point and the warm-up on whole sessions."""
    turns = workload.get("turns")
    if not turns:
        fail(f"{where}.turns: a sessions workload needs its turns per session; set turns: 8")
    if sweep["request_rates"] or sweep.get("search") or sweep.get("trace_speedups"):
        fail(
            f"{at}: multi-turn sessions run closed loop (concurrency: users, each running its "
            "sessions one after another); set request_rates: []"
        )
    for key in ("concurrency_num_prompts", "warmups"):
        if sweep[key] % turns:
            fail(
                f"{at}.{key}: {sweep[key]} is not whole sessions of {turns} turns; "
                "make it a multiple"
            )


def _check_sweep(name: str, sweep: Mapping[str, Any], names: list[str]) -> None:
    search, replays = sweep.get("search"), sweep.get("trace_speedups")
    if replays and (sweep["request_rates"] or sweep["concurrency"] or search):
        fail(
            f"sweeps.{name}: a trace replay's points are its trace_speedups; set "
            "request_rates: [] and concurrency: [] (and no search)"
        )
    if not (sweep["request_rates"] or sweep["concurrency"] or search or replays):
        fail(f"sweeps.{name}: no points; give request_rates, concurrency and/or search")
    if ramp := sweep.get("ramp_up"):
        rates = sweep["request_rates"]
        if search or not rates or any(r == "inf" or r < ramp["start_rps"] for r in rates):
            fail(
                f"sweeps.{name}.ramp_up: each of request_rates is a ramp's end: give finite rates "
                f"of at least start_rps {ramp['start_rps']:g} (and no search)"
            )
    if search and not sweep.get("slo"):
        fail(f"sweeps.{name}.search: needs the `slo` it searches for; add slo")
    if search and sweep["request_rates"]:
        fail(
            f"sweeps.{name}: search probes request rates itself; set request_rates: [] "
            "(or move them to a sweep of their own)"
        )
    if sweep.get("kind") == "decode" and (
        sweep["request_rates"] or sweep["concurrency"] != [1] or search
    ):
        fail(
            f"sweeps.{name}: a decode sweep is one user: set request_rates: [] and "
            "concurrency: [1] (and no search)"
        )
    if search and not search["low"] < search["high"]:
        fail(f"sweeps.{name}.search: low must be below high")
    if len(set(names)) < len(names):
        dup = next(p for p in names if names.count(p) > 1)
        fail(f"sweeps.{name}: point {dup} is listed twice; list each rate once")


def _check_quant(plan: Plan, where: str, engine: str, model: str, quant: str) -> None:
    instance = plan.instances[engine]
    fmt = instance.spec.model_format
    is_file = plan.models[model].is_file
    if fmt == "gguf":
        if is_file:
            if quant != "file":
                fail(f"{where}.quants: model {model!r} is a single GGUF file; use quants: [file]")
        elif quant not in GGUF_OUTTYPES and quant not in QUANT_TYPES:
            fail(
                f"{where}.quants: unknown quantization {quant!r} for {engine}; "
                f"known: {', '.join(GGUF_OUTTYPES + tuple(QUANT_TYPES))}"
            )
    elif fmt in HF_FORMATS:
        if is_file:
            fail(f"{where}.model: {engine} needs HF weights; {model!r} is a single GGUF file")
        if quant != "hf":
            fail(f"{where}.quants: {engine} serves HF weights as they are; use quants: [hf]")
    elif fmt in PREPARED_FORMATS:
        if is_file:
            fail(f"{where}.model: {engine} prepares from HF weights; {model!r} is a GGUF file")
        try:
            check_quant(instance.kind, quant, instance.options())
        except EngineConfigError as exc:
            fail(f"{where}.quants: {exc}")


def _check_instance(plan: Plan, name: str) -> None:
    instance = plan.instances[name]
    eng, kind, software = instance.entry, instance.kind, instance.spec.software
    if "python" in eng and software not in ("venv", "wheel"):
        fail(f"engines.{name}.python: {kind} is not a Python engine; drop python")
    # a venv is built from the env file, and a wheel (MLC) is built and run with its python
    needs_env = instance.software == "venv" or (instance.software, software) == ("build", "wheel")
    if needs_env and "env_file" not in eng:
        fail(
            f"engines.{name}.env_file: required (an environment file under envs/), or "
            "python: an interpreter that has the engine installed"
        )
    if needs_env and not instance.env_path.is_file():
        fail(f"engines.{name}.env_file: {eng['env_file']} does not exist")
    if (instance.software, software) == ("build", "wheel"):
        _check_archive(name, instance)
    if "bin_dir" in eng and kind != "llamacpp":
        fail(f"engines.{name}.bin_dir: only llama.cpp runs prebuilt binaries; drop bin_dir")
    if "bin_dir" in eng and not Path(eng["bin_dir"], "llama-server").is_file():
        fail(f"engines.{name}.bin_dir: {eng['bin_dir']}/llama-server does not exist")
    if (instance.software, software) == ("build", "cmake"):
        if eng["source"] == "pypi-sdist" and "version" not in eng:
            fail(f"engines.{name}.version: required for source pypi-sdist (e.g. '0.3.36')")
        if eng["source"] == "git" and "commit" not in eng:
            fail(f"engines.{name}.commit: required for source git (a sha, tag or branch)")
    if software == "external" and "base_url" not in eng:
        fail(f"engines.{name}.base_url: required for an already running endpoint")
    try:
        container.check_instance(name, eng, instance.spec)
    except EngineConfigError as exc:
        fail(str(exc))
    _check_server_args(name, instance.spec, eng)


def _check_archive(name: str, instance: Instance) -> None:
    """The source archive a wheel is built from exists and is pinned (sha256, commit)."""
    eng = instance.entry
    if "archive" in eng and not ("sha256" in eng and "commit" in eng):
        fail(
            f"engines.{name}: archive {eng['archive']} needs its sha256 and the "
            "upstream commit it holds (sha256: ..., commit: ...)"
        )
    if not (path := instance.archive.path).is_file():
        fail(
            f"engines.{name}.archive: {path} does not exist; give the path of an mlc-llm "
            "source archive (envs/sources/MANIFEST.md), or python: an interpreter with "
            f"{instance.kind} installed"
        )


def _check_server_args(name: str, spec: EngineSpec, eng: Mapping[str, Any]) -> None:
    """The server's argv built once from placeholders, to find a flag that an option and
    `server_args` both set before anything runs (the server would keep the last silently)."""
    if spec.server_argv is None:
        return
    placeholders = ServerContext(
        model="model", served_name="model", extra_args=tuple(eng.get("server_args", ())),
        options=eng, bin_dir="bin", python="python", tokenizer="tokenizer", workdir="work",
    )  # fmt: skip
    try:
        spec.server_argv(placeholders)
    except FlagClashError as exc:
        fail(f"engines.{name}: {exc}")
    except EngineConfigError:  # anything else needs the real paths: the serve job reports it
        pass
