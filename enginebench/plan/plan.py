"""`Plan`: the validated config (and the lock file, already read) turned into what the workflow
runs: instances, models, sweeps and their points, runs (instance x model x quant x sweep), and
every job's inputs and parameters. Pure: it reads the env files (their hash keys the environments)
and asks whether configured paths exist; it starts and writes nothing. The rules look jobs up here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any, NamedTuple

from enginebench.engines.prepare import PREPARED_FORMATS, prepared_model
from enginebench.engines.source import ref_label
from enginebench.engines.spec import PrepareContext
from enginebench.lockfile import EMBEDDED, lock_path
from enginebench.plan import paths
from enginebench.plan.checks import HF_FORMATS, check_engines, check_plan, fail
from enginebench.plan.instances import Instance, Lock, with_defaults
from enginebench.points import SweepPoint, points_from_config, rows_needed
from enginebench.runspec import RunSpec, sweep_bench_args
from enginebench.slo_search import Search

# the GGUF every other is quantized from (rule convert_gguf): llama-perplexity's KL base
BASE_GGUF = "f16"


class PlanError(LookupError):
    """A job the plan does not define (a path no configured run asks for)."""


class Run(NamedTuple):
    """One serve job, one server, one table: an instance x model x quant x named sweep."""

    engine: str
    model: str
    quant: str
    sweep: str

    @property
    def dir(self) -> str:
        return paths.sweep_dir(*self)

    @property
    def table_csv(self) -> str:
        """Its table, written last: the run completed (`completed_only`)."""
        return f"{self.dir}/table.csv"


@dataclass(frozen=True, eq=False)
class Model:
    name: str
    entry: Mapping[str, Any]

    @property
    def source(self) -> str:
        return str(self.entry["source"])

    @cached_property
    def is_dir(self) -> bool:
        """A local model that is an HF folder (relative paths: to the working directory)."""
        return self.source == "local" and Path(self.entry["path"]).is_dir()

    @property
    def is_file(self) -> bool:
        """Weights that are one GGUF (or GGML) file, served as they are."""
        return self.source == "gguf" or (self.source == "local" and not self.is_dir)

    @property
    def has_hf_dir(self) -> bool:
        return self.source in ("synthetic", "hf") or self.is_dir

    @property
    def hf_dir(self) -> str:
        if self.source == "local":
            return str(self.entry["path"])
        return f"{paths.model_dir(self.name)}/hf"

    @property
    def tokenizer_dir(self) -> str:
        return f"{paths.model_dir(self.name)}/tokenizer" if self.is_file else self.hf_dir

    def gguf_file(self, quant: str) -> str:
        if self.source == "local" and not self.is_dir:
            return str(self.entry["path"])
        if self.source == "gguf":
            if self.entry["filename"].endswith(".gguf"):
                return f"{paths.model_dir(self.name)}/file/original"
            return f"{paths.model_dir(self.name)}/file/converted.gguf"  # legacy GGML -> GGUF
        return f"{paths.model_dir(self.name)}/gguf/{quant}.gguf"


@dataclass(frozen=True, eq=False)
class Sweep:
    name: str
    entry: Mapping[str, Any]
    workload: dict[str, Any]  # the top-level `workload`, the sweep's own keys over it
    points: tuple[SweepPoint, ...]

    @cached_property
    def point_names(self) -> list[str]:
        """The points' names in the order they run (their result files' stems)."""
        return [p.name for p in self.points]

    @cached_property
    def search(self) -> Search | None:
        return Search.from_config(self.entry)

    @cached_property
    def prompt_rows(self) -> int:
        """Rows of its prompt file: the warm-up and every point get rows of their own, so that
        no request repeats a prompt the server has seen."""
        return rows_needed(self.points, self.entry["warmups"], self.search)

    @cached_property
    def trace(self) -> dict[str, Any] | None:
        """A trace workload's file and replay keys (`path`, then `--trace-*`'s); None else."""
        if self.workload["dataset"] != "trace":
            return None
        return {"path": self.workload["dataset_path"], **self.workload.get("trace", {})}

    @property
    def is_decode(self) -> bool:
        return self.entry.get("kind") == "decode"


def names_regex(names: Iterable[str]) -> str:
    """A wildcard constraint matching exactly `names` (nothing, for none)."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!x)x"


class Plan:
    """What a validated config runs. Raises ConfigError (one line) for a config it cannot run."""

    def __init__(
        self, config: Mapping[str, Any], lock: Lock | None = None, root: str | Path = "."
    ) -> None:
        lock = lock or Lock(str(lock_path(EMBEDDED)), {})
        check_engines(config)
        self.config = config
        self.instances = {
            n: Instance(n, with_defaults(n, e), Path(root), lock)
            for n, e in config["engines"].items()
        }
        self.models = {name: Model(name, entry) for name, entry in config["models"].items()}
        self.runs = [
            Run(b["engine"], b["model"], q, s)
            for b in config["benchmarks"]
            for q in b["quants"]
            for s in b["sweeps"]
        ]
        points = {name: tuple(points_from_config(s)) for name, s in config["sweeps"].items()}
        check_plan(self, points)
        # the first instance that builds a llama.cpp builds it for every instance that agrees
        owners: dict[tuple[str, ...], str] = {}
        for n, inst in self.instances.items():
            if inst.software == "build":
                owner = owners.setdefault(inst.build_key, n)
                self.instances[n] = replace(inst, build_owner=owner)
        self.sweeps = {
            name: Sweep(name, s, self.workload_of(name), points[name])
            for name, s in config["sweeps"].items()
        }
        # completed_only: the aggregates of the runs whose table exists (relative to the
        # working directory, as every path here); the rest are named, not silently dropped
        self.left_out: list[Run] = []
        if config.get("completed_only"):
            done = [run for run in self.runs if Path(run.table_csv).is_file()]
            if not done:
                fail(
                    "completed_only: no run has completed yet (no results/<engine>/<model>/"
                    "<quant>/<sweep>/table.csv here); run the workflow without it first"
                )
            self.left_out = [run for run in self.runs if run not in done]
            self.runs = done

    def workload_of(self, sweep: str) -> dict[str, Any]:
        return {**self.config["workload"], **self.config["sweeps"][sweep].get("workload", {})}

    # names -------------------------------------------------------------------------------------
    def instances_of(self, kind: str) -> list[str]:
        return [n for n, i in self.instances.items() if i.kind == kind]

    def models_of(self, source: str) -> list[str]:
        return [n for n, m in self.models.items() if m.source == source]

    @cached_property
    def mlc_builds(self) -> list[str]:
        """MLC-LLM instances the workflow builds (from a source archive into a wheel)."""
        return [n for n in self.instances_of("mlc") if self.instances[n].software == "build"]

    @cached_property
    def source_instances(self) -> list[str]:
        return [n for n, i in self.instances.items() if i.source]

    @cached_property
    def prepared_instances(self) -> list[str]:
        """Instances whose engine prepares its own model format (MLC, TensorRT-LLM, EXL2)."""
        return [n for n, i in self.instances.items() if i.spec.model_format in PREPARED_FORMATS]

    @cached_property
    def prepare_steps(self) -> list[str]:
        return sorted({s for n in self.prepared_instances for s in self.instances[n].spec.prepare})

    @cached_property
    def gguf_tools(self) -> Instance:
        """The llama.cpp instance whose checkout converts and whose build quantizes every GGUF
        (the one named llamacpp, else the first built one): every llama.cpp instance serves the
        same files, so a regression hunt compares engines, not conversions."""
        built = [n for n in self.instances_of("llamacpp") if self.instances[n].software == "build"]
        name = "llamacpp" if "llamacpp" in built or not built else built[0]
        if name in self.instances:
            return self.instances[name]
        return Instance(name, {}, Path(), Lock("", {}))

    @cached_property
    def workloads(self) -> dict[str, dict[str, Any]]:
        """name -> workload, of every sweep that a benchmark runs (names checked unique), and the
        top-level one where fidelity draws its prompts from it."""
        top = [self.config["workload"]] if self.fidelity_runs else []
        return {w["name"]: w for w in [*top, *(self.sweeps[s].workload for s in self.run_sweeps)]}

    @cached_property
    def run_sweeps(self) -> list[str]:
        return sorted({run.sweep for run in self.runs})

    @cached_property
    def instance_differences(self) -> dict[str, str]:
        """{instance: what sets it apart from the other instances of its kind} (option=value,
        comma-joined; only for kinds with several instances): the comparison's legend."""
        out = {}
        for kind in sorted({i.kind for i in self.instances.values()}):
            names = self.instances_of(kind)
            if len(names) < 2:
                continue
            entries = {
                n: {k: v for k, v in self.instances[n].entry.items() if k != "kind"} for n in names
            }
            keys = sorted({k for e in entries.values() for k in e})
            differ = [
                k
                for k in keys
                if len({json.dumps(e.get(k), sort_keys=True) for e in entries.values()}) > 1
            ]
            for n in names:
                out[n] = ", ".join(f"{k}={json.dumps(entries[n].get(k))}" for k in differ)
        return out

    # paths -------------------------------------------------------------------------------------
    def prompts_file(self, model: str, sweep: str) -> str:
        """One seeded prompt file per model x workload x rows: sweeps of one size share it, and a
        sweep that needs more prompts does not change the others' input. A trace's replay: the
        trace file (its prompts are drawn from it at each point, a fresh copy each)."""
        s = self.sweeps[sweep]
        if s.trace is not None:
            return str(s.trace["path"])
        return paths.prompts_file(model, s.workload["name"], s.prompt_rows)

    def model_artifact(self, run: Run) -> str | list[str]:
        """What the server loads ([]: nothing, an endpoint)."""
        spec, model = self.instances[run.engine].spec, self.models[run.model]
        if spec.model_format == "gguf":
            return model.gguf_file(run.quant)
        if spec.model_format in HF_FORMATS:
            return model.hf_dir
        if spec.model_format in PREPARED_FORMATS:
            return paths.prepared_step_json(run.engine, run.model, run.quant, spec.prepare[-1])
        return []

    def summaries(self, run: Run) -> list[str] | None:
        """The summary JSON of each point, inside the serve job's points/ directory; None for a
        sweep with a search (its probes are chosen as it runs: whatever points/ holds)."""
        sweep = self.sweeps[run.sweep]
        if sweep.search:
            return None
        return [f"{run.dir}/points/{name}.json" for name in sweep.point_names]

    @cached_property
    def final_outputs(self) -> list[str]:
        """What `all` asks for: the aggregates. Each run's table comes in through the manifest
        (which lists every run's table.csv), and its Markdown and HTML with it (one job)."""
        outs = paths.tables("results/comparison") + paths.tables("results/capacity")
        outs += ["results/results.csv", "results/results.parquet"]
        if self.decode_sweeps:
            outs += paths.tables("results/decode")
        if self.fidelity_runs:
            outs += [*paths.tables("results/fidelity"), "results/plots/fidelity.png"]
        outs += [plot for model in self.run_models for plot in paths.plots(model)]
        return [*outs, "results/manifest.json", "results/provenance.html"]

    @cached_property
    def run_models(self) -> list[str]:
        return sorted({run.model for run in self.runs})

    # jobs --------------------------------------------------------------------------------------
    def serve_inputs(self, run: Run) -> dict[str, Any]:
        instance, model = self.instances[run.engine], self.models[run.model]
        return {
            "model": self.model_artifact(run),
            "software": instance.software_file or [],
            "prompts": self.prompts_file(run.model, run.sweep),
            "tokenizer": model.tokenizer_dir,
            "model_source": paths.model_source_json(run.model),
            # the fetched checkout: run by the server (TabbyAPI) or recorded as provenance only
            **({"source": instance.source_dir} if instance.source_dir else {}),
        }

    def run_spec(self, run: Run) -> RunSpec:
        """Everything that defines a sweep result (its serve job's one parameter, so that a
        change reruns exactly this job), the points built once, here."""
        instance, sweep, model = (
            self.instances[run.engine],
            self.sweeps[run.sweep],
            self.models[run.model],
        )
        eng, spec = instance.entry, instance.spec
        options = instance.options("serve")
        if spec.model_format in PREPARED_FORMATS:  # what the last preparation step makes
            ctx = PrepareContext(model.hf_dir, paths.prepared_dir(*run[:3]), run.quant,
                                 options)  # fmt: skip
            served = prepared_model(instance.kind, ctx)
        else:  # the file or folder it loads; an endpoint's ([]): the model's name
            artifact = self.model_artifact(run)
            served = artifact if isinstance(artifact, str) else run.model
        api_key_env = eng.get("api_key_env")
        # the workflow's llama.cpp build or the prebuilt binaries the config names
        builds = instance.software in ("build", "bin_dir") and spec.software == "cmake"
        return RunSpec(
            engine=run.engine,
            kind=instance.kind,
            model=served,
            served_name=run.model,
            quant=run.quant,
            sweep=run.sweep,
            out_dir=f"{run.dir}/points",
            server_json=f"{run.dir}/server.json",
            server_log=paths.server_log(*run),
            hash_cache=paths.HASH_CACHE,
            prompts_file="" if sweep.trace else self.prompts_file(run.model, run.sweep),
            trace=sweep.trace,
            ramp=sweep.entry.get("ramp_up"),
            tokenizer=model.tokenizer_dir,
            points=sweep.points,
            search=sweep.search,
            warmups=sweep.entry["warmups"],
            skip_past_saturation=sweep.entry["skip_past_saturation"],
            seed=sweep.workload["seed"],
            endpoint=sweep.workload["endpoint"],
            bench_args=sweep_bench_args(sweep.entry),
            server_args=eng["server_args"],
            options=options,
            env=eng["env"],
            secret_env=(api_key_env,) if api_key_env else (),
            bin_dir=instance.bin_dir if builds else None,
            # the interpreter the config brings (a built environment's comes with its record)
            python=options.get("python"),
            source_dir=instance.source_dir or eng.get("source_dir"),
            readiness_timeout=eng.get("readiness_timeout"),  # None: the engine's own
            base_url=eng.get("base_url"),
            api_key_env=api_key_env,
            metadata={
                "model": run.model,
                "software_id": instance.software_id,
                "workload": sweep.workload["name"],
            },
        )

    # fidelity ----------------------------------------------------------------------------------
    @cached_property
    def fidelity_runs(self) -> list[Run]:
        """Each engine x model x quant whose benchmark asks for fidelity and whose model has HF
        weights (the reference), as the Run of its benchmark's first sweep: the server that
        answers is started as that sweep's is."""
        runs: dict[tuple[str, str, str], Run] = {}
        for b in self.config["benchmarks"]:
            if self.asks_fidelity(b):
                for q in b["quants"]:
                    run = Run(b["engine"], b["model"], q, b["sweeps"][0])
                    runs.setdefault(run[:3], run)
        if self.config.get("completed_only"):  # what was measured, not measured now
            return [
                r
                for r in runs.values()
                if Path(paths.fidelity_path(*r[:3], "score.json")).is_file()
            ]
        return list(runs.values())

    def asks_fidelity(self, bench: Mapping[str, Any]) -> bool:
        """A benchmark asks for fidelity, of a model with HF weights (the reference)."""
        return bool(bench["fidelity"]) and self.models[bench["model"]].has_hf_dir

    def fidelity_run(self, engine: str, model: str, quant: str) -> Run:
        for run in self.fidelity_runs:
            if run[:3] == (engine, model, quant):
                return run
        raise PlanError(f"no benchmark asks for the fidelity of {engine}/{model}/{quant}")

    def fidelity_prompts(self, model: str) -> str:
        return paths.prompts_file(model, self.config["workload"]["name"],
                                  self.config["fidelity"]["num_prompts"])  # fmt: skip

    def fidelity_inputs(self, engine: str, model: str, quant: str) -> dict[str, Any]:
        run = self.fidelity_run(engine, model, quant)
        return {**self.serve_inputs(run), "prompts": self.fidelity_prompts(model)}

    def fidelity_spec(self, engine: str, model: str, quant: str) -> RunSpec:
        """The serve job's RunSpec of the benchmark's first sweep, its points replaced by the
        collection (`RunSpec.fidelity`)."""
        run, fid = self.fidelity_run(engine, model, quant), self.config["fidelity"]
        path = partial(paths.fidelity_path, engine, model, quant)
        spec = self.run_spec(run)
        return replace(
            spec,
            sweep="fidelity",
            out_dir=str(Path(path("engine.jsonl")).parent),
            server_json=path("server.json"),
            server_log=f"logs/fidelity/{engine}/{model}/{quant}.server.log",
            prompts_file=self.fidelity_prompts(model),
            points=(), trace=None, ramp=None, search=None, warmups=0, bench_args=(),
            endpoint="/v1/completions", seed=self.config["workload"]["seed"],
            fidelity={**{k: fid[k] for k in ("num_prompts", "max_tokens", "top_logprobs")},
                      "out": path("engine.jsonl")},
            metadata={**spec.metadata, "workload": self.config["workload"]["name"]},
        )  # fmt: skip

    @cached_property
    def fidelity_scores(self) -> list[str]:
        return [paths.fidelity_path(*run[:3], "score.json") for run in self.fidelity_runs]

    @cached_property
    def decode_fidelity_scores(self) -> list[str]:
        """The fidelity of the engine x model x quants the decode table has a row for."""
        rows = {run[:3] for run in self.decode_runs}
        return [paths.fidelity_path(*r[:3], "score.json") for r in self.fidelity_runs
                if r[:3] in rows]  # fmt: skip

    @cached_property
    def llama_kld_jsons(self) -> list[str]:
        """llama-perplexity's full-vocabulary KL against the f16 GGUF, beside the fidelity of
        every quantized GGUF the workflow's own llama.cpp builds serve."""
        jsons = [
            paths.llama_kld_json(*run[:3])
            for run in self.fidelity_runs
            if self.instances[run.engine].software == "build"
            and self.instances[run.engine].spec.software == "cmake"
            and run.quant != BASE_GGUF
        ]
        if self.config.get("completed_only"):  # what was measured, not measured now
            return [j for j in jsons if Path(j).is_file()]
        return jsons

    def llama_kld_inputs(self, engine: str, model: str, quant: str) -> dict[str, str]:
        instance, m = self.instances[engine], self.models[model]
        root = Path(instance.bin_dir).parent
        return {
            "tool": str(root / "tools" / "llama-perplexity"),
            "build": instance.build_json,
            "base": m.gguf_file(BASE_GGUF),
            "gguf": m.gguf_file(quant),
            "prompts": self.fidelity_prompts(model),
        }

    def prepare_inputs(self, engine: str, model: str, quant: str, step: str) -> dict[str, Any]:
        instance = self.instances[engine]
        steps = instance.spec.prepare
        if step not in steps:
            raise PlanError(f"{engine} has no preparation step {step!r}")
        i = steps.index(step)
        inputs: dict[str, Any] = {
            "hf": self.models[model].hf_dir,
            "software": instance.software_file or [],
            **instance.source_input(step),
        }
        if i > 0:
            inputs["previous"] = paths.prepared_step_json(engine, model, quant, steps[i - 1])
        return inputs

    def prepare_params(self, engine: str, model: str, quant: str, step: str) -> dict[str, Any]:
        return {
            "options": self.instances[engine].options(step),
            "env": dict(self.instances[engine].entry["env"]),  # the engine's, as its server's
            "out_dir": paths.prepared_dir(engine, model, quant),
            "kind": self.instances[engine].kind,
        }

    def source_param(self, engine: str, label: str) -> tuple[str, str]:
        """(url, ref) of the checkout src-<label> of an instance."""
        instance = self.instances[engine]
        if instance.source is None or ref_label(instance.source[1]) != label:
            raise PlanError(
                f"{engine}: src-{label} is not the configured checkout ({instance.source_dir})"
            )
        return instance.source

    def env_instance(self, kind: str, key: str) -> Instance:
        """An instance whose environment is resources/envs/<kind>-<key> (they share the file)."""
        for instance in self.instances.values():
            if instance.kind == kind and "env_file" in instance.entry and instance.env_key == key:
                return instance
        raise PlanError(f"no engine instance has environment {kind}-{key}")

    # aggregates --------------------------------------------------------------------------------
    @cached_property
    def sweep_slos(self) -> dict[str, Any]:
        """{sweep name: its `slo`} of the sweeps that benchmarks name (the capacity table's)."""
        return {name: self.sweeps[name].entry.get("slo") for name in self.run_sweeps}

    @cached_property
    def points_dirs(self) -> list[str]:
        return [f"{run.dir}/points" for run in self.runs]

    @cached_property
    def table_csvs(self) -> list[str]:
        return [run.table_csv for run in self.runs]

    @cached_property
    def results_sources(self) -> list[list[Any]]:
        """[summaries, server.json] of every run: the tidy results table's sources."""
        return [[self.summaries(run), f"{run.dir}/server.json"] for run in self.runs]

    @cached_property
    def model_sources(self) -> list[str]:
        return [paths.model_source_json(m) for m in self.run_models]

    # decode ------------------------------------------------------------------------------------
    @cached_property
    def decode_sweeps(self) -> list[str]:
        """The decode sweeps that benchmarks run (kind: decode)."""
        return [s for s in self.run_sweeps if self.sweeps[s].is_decode]

    @cached_property
    def decode_runs(self) -> list[Run]:
        return [run for run in self.runs if self.sweeps[run.sweep].is_decode]

    @cached_property
    def llama_bench_jsons(self) -> list[str]:
        """llama-bench beside every llama.cpp model x quant that a decode sweep serves."""
        runs = {
            r[:3] for r in self.decode_runs if self.instances[r.engine].spec.software == "cmake"
        }
        jsons = [paths.llama_bench_json(*r) for r in sorted(runs)]
        if self.config.get("completed_only"):  # a run cut short: tables without, no new runs
            return [j for j in jsons if Path(j).is_file()]
        return jsons

    def llama_bench_prompts(self, model: str, quant: str) -> str:
        """The prompt file of the first decode sweep this model x quant runs (its depth)."""
        sweep = next(r.sweep for r in self.decode_runs if (r.model, r.quant) == (model, quant))
        return self.prompts_file(model, sweep)

    @cached_property
    def decode_models(self) -> list[str]:
        """The decode runs' models that have an HF folder (its config.json gives the shape of
        the KV cache; a GGUF-only model's roofline leaves the KV term out)."""
        return sorted({r.model for r in self.decode_runs if self.models[r.model].has_hf_dir})

    @cached_property
    def decode_hf_dirs(self) -> list[str]:
        return [self.models[m].hf_dir for m in self.decode_models]

    @cached_property
    def decode_uses_gpu(self) -> dict[str, bool]:
        return {r.engine: self.instances[r.engine].uses_gpu for r in self.decode_runs}
