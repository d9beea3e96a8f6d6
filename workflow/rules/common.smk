"""DAG helpers: config validation, the benchmark matrix, paths and input functions."""

import hashlib
import json
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from enginebench.engines.prepare import PREPARED_FORMATS, check_quant
from enginebench.engines.registry import ENGINES
from enginebench.engines.server import relay_sigterm
from enginebench.engines.source import check_ref, ref_label
from enginebench.engines.spec import EngineConfigError
from enginebench.lockfile import SHA, lock_path, read_lock, ref_key
from enginebench.models.gguf import QUANT_TYPES
from enginebench.slo_search import Search
from enginebench.sweep import points_from_config, rows_needed

if "sweep" in config:  # the key of enginebench <= 0.1, before named sweeps
    raise WorkflowError(
        "config: `sweep:` is now `sweeps:`, a mapping of named sweeps; "
        "move its keys under `sweeps: {default: {...}}`"
    )
validate(config, "../schemas/config.schema.yaml")


# path segments: a name never spans a "/" (results/{engine}/{model}/{quant}/{sweep}/...)
wildcard_constraints:
    engine=r"[^/]+",
    model=r"[^/]+",
    quant=r"[^/]+",
    sweep=r"[^/]+",
    step=r"[^/]+",


HF_FORMATS = ("hf",)
GGUF_OUTTYPES = ("f16", "bf16", "f32")


def _fail(msg):
    raise WorkflowError(f"config: {msg}")


def _no_match():
    # a wildcard constraint that matches nothing (a rule with no applicable config entry)
    return "(?!x)x"


def _names_regex(names):
    return "|".join(re.escape(n) for n in sorted(names)) or _no_match()


# ---------------------------------------------------------------------- instances
def kind_of(name):
    """The engine an `engines:` entry is an instance of: its `kind`, else its own name (so
    `llamacpp: {...}` is the llamacpp engine, `llamacpp-master: {kind: llamacpp}` another).
    """
    return config["engines"][name].get("kind", name)


def spec_of(name):
    """The EngineSpec of an instance: the one home of its engine's defaults."""
    return ENGINES[kind_of(name)]


def instances_of(kind):
    return [n for n in config["engines"] if kind_of(n) == kind]


def instance_differences():
    """{instance: what sets it apart from the other instances of its kind} (option=value,
    comma-joined; only for kinds with several instances): the comparison's legend."""
    out = {}
    for kind in sorted({kind_of(n) for n in config["engines"]}):
        names = instances_of(kind)
        if len(names) < 2:
            continue
        entries = {
            n: {k: v for k, v in config["engines"][n].items() if k != "kind"}
            for n in names
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


# ---------------------------------------------------------------------- checks
def _check_config():
    # first: the quant checks below build commands that name the checkout
    for name, eng in config["engines"].items():
        if kind_of(name) not in ENGINES:
            kind = f"kind {kind_of(name)!r}" if "kind" in eng else "engine"
            _fail(
                f"engines.{name}: unknown {kind}; known: {', '.join(sorted(ENGINES))} "
                "(an instance of one: any name, with `kind: <engine>`)"
            )
        _check_source(name, eng)
    for i, bench in enumerate(config["benchmarks"]):
        where = f"benchmarks[{i}]"
        engine, model = bench["engine"], bench["model"]
        if engine not in config["engines"]:
            known = ", ".join(sorted(config["engines"]))
            _fail(
                f"{where}.engine: {engine!r} has no entry under `engines:` (configured: "
                f"{known}); add one, e.g. {engine}: {{kind: llamacpp, ...}}"
            )
        if model not in config["models"]:
            _fail(f"{where}.model: {model!r} is not defined under `models:`")
        fmt = spec_of(engine).model_format
        for quant in bench["quants"]:
            _check_quant(where, engine, fmt, model, quant)
        for sweep in bench["sweeps"]:
            if sweep not in config["sweeps"]:
                _fail(
                    f"{where}.sweeps: {sweep!r} is not defined under `sweeps:`; "
                    f"defined: {', '.join(sorted(config['sweeps']))}"
                )
    named = {}
    for sweep in sorted({run[3] for run in bench_runs()}):
        workload = sweep_workload(sweep)
        where = (
            f"sweeps.{sweep}.workload"
            if "workload" in config["sweeps"][sweep]
            else "workload"
        )
        if workload["prefix_len"] and workload["dataset"] != "random":
            _fail(
                f"{where}.prefix_len: only the random dataset has a shared prefix "
                f"(dataset is {workload['dataset']}); drop prefix_len"
            )
        if named.setdefault(workload["name"], workload) != workload:
            _fail(
                f"{where}.name: {workload['name']!r} names two different workloads; give "
                "each its own name (prompt files are kept by workload name)"
            )
    runs = bench_runs()
    if len(set(runs)) < len(runs):
        dup = next(r for r in runs if runs.count(r) > 1)
        _fail(
            f"benchmarks: {'/'.join(dup)} is listed twice; list each combination once"
        )
    for name, sweep in config["sweeps"].items():
        search = sweep.get("search")
        if not sweep["request_rates"] and not sweep["concurrency"] and not search:
            _fail(
                f"sweeps.{name}: no points; give request_rates, concurrency and/or search"
            )
        if search and not sweep.get("slo"):
            _fail(f"sweeps.{name}.search: needs the `slo` it searches for; add slo")
        if search and sweep["request_rates"]:
            _fail(
                f"sweeps.{name}: search probes request rates itself; set request_rates: [] "
                "(or move them to a sweep of their own)"
            )
        if sweep.get("kind") == "decode" and (
            sweep["request_rates"] or sweep["concurrency"] != [1] or search
        ):
            _fail(
                f"sweeps.{name}: a decode sweep is one user: set request_rates: [] and "
                "concurrency: [1] (and no search)"
            )
        if search and not search["low"] < search["high"]:
            _fail(f"sweeps.{name}.search: low must be below high")
        points = sweep_points(name)
        if len(set(points)) < len(points):
            dup = next(p for p in points if points.count(p) > 1)
            _fail(f"sweeps.{name}: point {dup} is listed twice; list each rate once")
    for name, eng in config["engines"].items():
        spec = spec_of(name)
        if "python" in eng and spec.software != "venv":
            _fail(
                f"engines.{name}.python: {kind_of(name)} is not a Python engine; drop python"
            )
        if spec.software == "venv" and "python" not in eng and "env_file" not in eng:
            _fail(
                f"engines.{name}.env_file: required (an environment file under envs/), or "
                "python: an interpreter that has the engine installed"
            )
        if (
            spec.software == "venv"
            and "python" not in eng
            and not env_path(name).is_file()
        ):
            _fail(f"engines.{name}.env_file: {eng['env_file']} does not exist")
        if "bin_dir" in eng and kind_of(name) != "llamacpp":
            _fail(
                f"engines.{name}.bin_dir: only llama.cpp runs prebuilt binaries; drop bin_dir"
            )
        if "bin_dir" in eng and not Path(eng["bin_dir"], "llama-server").is_file():
            _fail(
                f"engines.{name}.bin_dir: {eng['bin_dir']}/llama-server does not exist"
            )
        if kind_of(name) == "llamacpp" and "bin_dir" not in eng:
            if eng["source"] == "pypi-sdist" and "version" not in eng:
                _fail(
                    f"engines.{name}.version: required for source pypi-sdist (e.g. '0.3.36')"
                )
            if eng["source"] == "git" and "commit" not in eng:
                _fail(
                    f"engines.{name}.commit: required for source git (a sha, tag or branch)"
                )
        if spec.software == "external" and "base_url" not in eng:
            _fail(f"engines.{name}.base_url: required for an already running endpoint")


def _check_source(name, eng):
    """`source_url` / `source_ref` override the checkout an engine declares; `source_dir`
    names one of the user's own instead (then nothing is fetched)."""
    given = [k for k in SOURCE_KEYS if k in eng]
    if spec_of(name).source is None:
        if given:
            _fail(f"engines.{name}.{given[0]}: {name} runs no code from a git checkout")
        return
    if given and eng.get("source_dir"):
        _fail(
            f"engines.{name}: give either source_dir (your checkout) or "
            f"{'/'.join(given)} (fetched by the workflow), not both"
        )
    if not isinstance(eng.get("source_url", ""), str) or eng.get("source_url") == "":
        _fail(f"engines.{name}.source_url: a git URL (string)")
    if "source_ref" in eng:
        if not isinstance(eng["source_ref"], str):
            _fail(f"engines.{name}.source_ref: a tag or commit sha, as a quoted string")
        try:
            check_ref(eng["source_ref"])
        except ValueError as exc:
            _fail(f"engines.{name}.source_ref: {exc}")


def _check_quant(where, engine, fmt, model, quant):
    source = config["models"][model]["source"]
    is_file = source == "gguf" or (source == "local" and not _local_is_hf_dir(model))
    if fmt == "gguf":
        if is_file:
            if quant != "file":
                _fail(
                    f"{where}.quants: model {model!r} is a single GGUF file; use quants: [file]"
                )
        elif quant not in GGUF_OUTTYPES and quant not in QUANT_TYPES:
            _fail(
                f"{where}.quants: unknown quantization {quant!r} for {engine}; "
                f"known: {', '.join(GGUF_OUTTYPES + tuple(QUANT_TYPES))}"
            )
    elif fmt in HF_FORMATS:
        if is_file:
            _fail(
                f"{where}.model: {engine} needs HF weights; {model!r} is a single GGUF file"
            )
        if quant != "hf":
            _fail(
                f"{where}.quants: {engine} serves HF weights as they are; use quants: [hf]"
            )
    elif fmt in PREPARED_FORMATS:
        if is_file:
            _fail(
                f"{where}.model: {engine} prepares from HF weights; {model!r} is a GGUF file"
            )
        try:
            check_quant(engine, quant, engine_options(engine))
        except EngineConfigError as exc:
            _fail(f"{where}.quants: {exc}")


def _local_is_hf_dir(model):
    return Path(config["models"][model].get("path", "")).is_dir()


# ---------------------------------------------------------------------- matrix
def all_cores():
    """Threads of the jobs that must own the machine (a sweep, the llama.cpp build): every core
    Snakemake may hand out; 1 where no --cores is given (`snakemake --report`, `-n`)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def bench_runs():
    """Every (engine, model, quant, sweep): one serve job, one server, one table each."""
    return [
        (b["engine"], b["model"], q, s)
        for b in config["benchmarks"]
        for q in b["quants"]
        for s in b["sweeps"]
    ]


def sweep_points(name):
    """Point names of the named sweep, in the order they run (the sweep's own names)."""
    return [p.name for p in points_from_config(config["sweeps"][name])]


def models_of(source):
    return [m for m, spec in config["models"].items() if spec["source"] == source]


def hf_dir_models():
    """Models whose weights are an HF directory made or fetched under resources/."""
    return models_of("synthetic") + models_of("hf")


# ---------------------------------------------------------------------- paths
def hf_dir(model):
    spec = config["models"][model]
    if spec["source"] == "local":
        return spec["path"]
    return f"resources/models/{model}/hf"


def tokenizer_dir(model):
    if config["models"][model]["source"] in ("gguf",) or (
        config["models"][model]["source"] == "local" and not _local_is_hf_dir(model)
    ):
        return f"resources/models/{model}/tokenizer"
    return hf_dir(model)


def model_source_json(model):
    return f"resources/models/{model}/source.json"


def gguf_file(model, quant):
    spec = config["models"][model]
    if spec["source"] == "local" and not _local_is_hf_dir(model):
        return spec["path"]
    if spec["source"] == "gguf":
        if spec["filename"].endswith(".gguf"):
            return f"resources/models/{model}/file/original"
        return f"resources/models/{model}/file/converted.gguf"  # legacy GGML -> GGUF
    return f"resources/models/{model}/gguf/{quant}.gguf"


def model_artifact(engine, model, quant):
    fmt = spec_of(engine).model_format
    if fmt == "gguf":
        return gguf_file(model, quant)
    if fmt in HF_FORMATS:
        return hf_dir(model)
    if fmt in PREPARED_FORMATS:
        return prepared_step_json(engine, model, quant, spec_of(engine).prepare[-1])
    return []


def prepared_dir(engine, model, quant):
    return f"resources/prepared/{engine}/{model}/{quant}/out"


def prepared_step_json(engine, model, quant, step):
    return f"resources/prepared/{engine}/{model}/{quant}/{step}.json"


def prepared_engines():
    """Instances whose engine prepares its own model format (MLC, TensorRT-LLM, EXL2)."""
    return [e for e in config["engines"] if spec_of(e).model_format in PREPARED_FORMATS]


def prepare_steps():
    return sorted({s for e in prepared_engines() for s in spec_of(e).prepare})


# llama.cpp ------------------------------------------------------------------
def _lock_file():
    """The lock file beside the first config file given (--configfile; else the embedded
    config/config.yaml): moving refs resolved once."""
    files = list(workflow.configfiles) or ["config/config.yaml"]
    return lock_path(files[0])


def _given_configfiles():
    given = [str(f) for f in workflow.configfiles if str(f) != "config/config.yaml"]
    return f" --configfile {' '.join(given)}" if given else ""


def _locked_commit(name, url, ref):
    """A commit sha as given, or the one the lock file records for a branch or tag: planning
    never asks a remote (so -n and --report run offline, and a run is repeatable)."""
    if SHA.fullmatch(ref):
        return ref
    lock = _lock_file()
    commit = read_lock(lock).get(ref_key(url, ref))
    if commit is None:
        _fail(
            f"engines.{name}.commit: {ref!r} is a branch or tag, not yet in {lock}; resolve "
            f"it once with `enginebench lock{_given_configfiles()}` "
            "(commit the lock file), or pin a 40-hex sha"
        )
    return commit


def gguf_tools():
    """The llama.cpp instance whose checkout converts and whose build quantizes every GGUF
    (the one named llamacpp, else the first): every llama.cpp instance serves the same files,
    so a regression hunt compares engines, not conversions."""
    names = [
        n for n in instances_of("llamacpp") if "bin_dir" not in config["engines"][n]
    ]
    return "llamacpp" if "llamacpp" in names or not names else names[0]


def llamacpp_tag(name=None):
    """Names a llama.cpp instance's source: pypi-<version> or git-<sha12>; nothing floats."""
    eng = config["engines"].get(name or gguf_tools())
    if eng is None:
        return "unconfigured"
    if eng["source"] == "pypi-sdist":
        return f"pypi-{eng['version']}"
    return f"git-{llamacpp_commit(name)[:12]}"


def llamacpp_commit(name=None):
    name = name or gguf_tools()
    eng = config["engines"][name]
    return _locked_commit(name, eng["git_url"], str(eng["commit"]))


def llamacpp_src(name=None):
    name = name or gguf_tools()
    return f"resources/engines/{name}/src-{llamacpp_tag(name)}"


def llamacpp_build(name=None):
    """<tag>-<backend>: the build folder's name under resources/engines/<instance>/."""
    name = name or gguf_tools()
    backend = config["engines"].get(name, {}).get("backend", "cpu")
    return f"{llamacpp_tag(name)}-{backend}"


def llamacpp_bin_dir(name=None):
    """Where an instance's binaries are: its build, or the prebuilt ones it names (bin_dir)."""
    name = name or gguf_tools()
    given = config["engines"].get(name, {}).get("bin_dir")
    return given or f"resources/engines/{name}/{llamacpp_build(name)}/bin"


def llamacpp_id(name):
    """What stands for a llama.cpp instance's software: its source tag, or its bin_dir."""
    return llamacpp_tag(name) if built(name) else config["engines"][name]["bin_dir"]


def built(name):
    """Whether the workflow builds this llama.cpp instance (not bin_dir: prebuilt)."""
    return "bin_dir" not in config["engines"][name]


# engines that run code from a git checkout (EngineSpec.source) ------------------
SOURCE_KEYS = ("source_url", "source_ref")


def engine_source(engine):
    """(git url, ref) of the checkout the workflow fetches for the engine: its declared
    `source`, overridden by the config's `source_url` / `source_ref`; None when the engine
    declares none or the config names its own checkout (`source_dir`)."""
    spec, eng = spec_of(engine), config["engines"][engine]
    if spec.source is None or eng.get("source_dir"):
        return None
    url, ref = spec.source
    return eng.get("source_url", url), eng.get("source_ref", ref)


def engine_source_dir(engine):
    """resources/engines/<engine>/src-<ref label>: the fetched checkout (None: none fetched)."""
    src = engine_source(engine)
    return f"resources/engines/{engine}/src-{ref_label(src[1])}" if src else None


def source_engines():
    return [e for e in config["engines"] if engine_source(e)]


def engine_options(engine, job=None):
    """The engine's config entry as one of its jobs sees it (`job`: a preparation step or
    "serve"; None: any). The checkout is `source_dir` only for the jobs that run code from it
    (EngineSpec.source_for), so that a new ref reruns those jobs and what follows them only.
    """
    eng = config["engines"][engine]
    options = {k: v for k, v in eng.items() if k not in ("server_args", "env", "kind")}
    spec = spec_of(engine)
    if spec.source is not None:
        for key in ("source_dir", *SOURCE_KEYS):
            options.pop(key, None)
        if job is None or job in spec.source_for:
            options["source_dir"] = eng.get("source_dir") or engine_source_dir(engine)
    return options


def source_input(engine, job):
    """{"source": fetched checkout} for a job that runs code from it, else {}."""
    if job in spec_of(engine).source_for and engine_source(engine):
        return {"source": engine_source_dir(engine)}
    return {}


def engine_source_param(index):
    """A params function: the url (0) or ref (1) the job's checkout is fetched at."""

    def get(wildcards):
        src = engine_source(wildcards.engine)
        if src is None or ref_label(src[1]) != wildcards.label:
            raise WorkflowError(
                f"{wildcards.engine}: src-{wildcards.label} is not the configured checkout "
                f"({engine_source_dir(wildcards.engine)})"
            )
        return src[index]

    return get


# venv engines ---------------------------------------------------------------
def env_path(engine):
    """The engine's envs/ file; relative paths are relative to the workflow's root."""
    return Path(workflow.basedir, config["engines"][engine]["env_file"])


def env_key(engine):
    """Short content hash of the engine's environment file: a bump rebuilds only that env."""
    data = env_path(engine).read_bytes()
    return hashlib.sha256(data).hexdigest()[:12]


def engine_software(engine):
    """The file that stands for the engine's software being ready: its llama.cpp build, or its
    environment (keyed by engine and file: instances of one engine with one file share it);
    none for an interpreter the user brings (`python:`)."""
    software = spec_of(engine).software
    if software == "cmake":
        return f"{llamacpp_bin_dir(engine)}/build.json" if built(engine) else []
    if software == "venv" and "python" not in config["engines"][engine]:
        return f"resources/envs/{kind_of(engine)}-{env_key(engine)}/env.json"
    return []


def env_instance(wildcards):
    """An instance whose environment is resources/envs/<kind>-<key> (they share the file)."""
    for name in config["engines"]:
        if (
            kind_of(name) == wildcards.engine
            and "env_file" in config["engines"][name]
            and env_key(name) == wildcards.key
        ):
            return name
    raise WorkflowError(
        f"no engine instance has environment {wildcards.engine}-{wildcards.key}"
    )


def engine_uses_gpu(engine):
    eng = config["engines"][engine]
    if "gpu" in eng:
        return bool(eng["gpu"])
    return bool(spec_of(engine).uses_gpu(eng))


# workload -------------------------------------------------------------------
def prompts_needed(sweep):
    """Rows of the sweep's prompt file: the warm-up and every point get rows of their own
    (enginebench.sweep.prompt_rows), so that no request repeats a prompt the server has seen.
    """
    spec = config["sweeps"][sweep]
    return rows_needed(
        points_from_config(spec), spec["warmups"], Search.from_config(spec)
    )


def sweep_workload(sweep):
    """The workload a sweep sends: the top-level `workload`, the sweep's own keys over it."""
    return {**config["workload"], **config["sweeps"][sweep].get("workload", {})}


def workloads():
    """name -> workload, of every sweep that a benchmark runs (names checked unique)."""
    return {
        sweep_workload(s)["name"]: sweep_workload(s)
        for s in {r[3] for r in bench_runs()}
    }


def prompts_file(model, sweep):
    """One seeded prompt file per model x workload x count: sweeps of the same size share it, and
    a sweep that needs more prompts does not change the others' input."""
    workload = sweep_workload(sweep)["name"]
    return f"results/datasets/{model}/{workload}/{prompts_needed(sweep)}.jsonl"


def sweep_dir(engine, model, quant, sweep):
    return f"results/{engine}/{model}/{quant}/{sweep}"


def summaries_of(engine, model, quant, sweep):
    """The summary JSON of each point, inside the serve job's points/ directory; None for a
    sweep with a search (its probes are chosen as it runs: whatever points/ holds)."""
    if config["sweeps"][sweep].get("search"):
        return None
    points = f"{sweep_dir(engine, model, quant, sweep)}/points"
    return [f"{points}/{p}.json" for p in sweep_points(sweep)]


def table_outputs(engine, model, quant, sweep):
    base = sweep_dir(engine, model, quant, sweep)
    return [f"{base}/table.{ext}" for ext in ("csv", "md", "html")]


def final_outputs():
    outs = []
    for run in bench_runs():
        outs += table_outputs(*run)
    outs += [
        f"results/{name}.{ext}"
        for name in ("comparison", "capacity")
        for ext in ("csv", "md", "html")
    ]
    outs += ["results/results.csv", "results/results.parquet"]
    if decode_sweeps():
        outs += [f"results/decode.{ext}" for ext in ("csv", "md", "html")]
    outs += [
        f"results/plots/{m}-{name}" for m in plot_models() for name in plot_names()
    ]
    outs += ["results/manifest.json", "results/provenance.html"]
    return outs


def plot_models():
    return sorted({run[1] for run in bench_runs()})


def plot_names():
    return [
        f"{kind}{loop}.{ext}"
        for kind in ("ttft", "tpot", "throughput")
        for loop in ("", "-conc")
        for ext in ("png", "svg")
    ] + [f"pareto.{ext}" for ext in ("png", "svg")]


# ---------------------------------------------------------------------- input functions
def model_field(key):
    """A params function reading one field of the job's model entry."""

    def get(wildcards):
        return config["models"][wildcards.model][key]

    return get


def llamacpp_field(key):
    """A params function: one field of the job's llama.cpp instance ({engine})."""

    def get(wildcards):
        return config["engines"][wildcards.engine].get(key)

    return get


def serve_inputs(wildcards):
    e, m, q = wildcards.engine, wildcards.model, wildcards.quant
    return {
        "model": model_artifact(e, m, q),
        "software": engine_software(e),
        "prompts": prompts_file(m, wildcards.sweep),
        "tokenizer": tokenizer_dir(m),
        "model_source": model_source_json(m),
        # the fetched checkout: run by the server (TabbyAPI) or recorded as provenance only
        **({"source": engine_source_dir(e)} if engine_source(e) else {}),
    }


def serve_params(wildcards):
    """Everything that defines a sweep result, so that a change reruns exactly this job."""
    e = wildcards.engine
    eng = config["engines"][e]
    return {
        "server_args": list(eng["server_args"]),
        "options": engine_options(e, "serve"),
        "source_dir": eng.get(
            "source_dir"
        ),  # the user's own checkout: its HEAD is recorded
        "env": dict(eng["env"]),
        # None: the engine's own (EngineSpec.readiness_timeout)
        "readiness_timeout": eng.get("readiness_timeout"),
        "base_url": eng.get("base_url"),
        "api_key_env": eng.get("api_key_env"),
        # only this sweep's definition: a change to another sweep does not rerun this job
        "sweep_name": wildcards.sweep,
        "sweep": config["sweeps"][wildcards.sweep],
        "workload": sweep_workload(wildcards.sweep),
        "points": sweep_points(wildcards.sweep),
        "software_id": (
            llamacpp_id(e) if spec_of(e).software == "cmake" else env_key_or_none(e)
        ),
        "prepared_dir": (
            prepared_dir(e, wildcards.model, wildcards.quant)
            if spec_of(e).model_format in PREPARED_FORMATS
            else None
        ),
        "kind": kind_of(e),
    }


def prepare_inputs(wildcards):
    e, m, q, step = wildcards.engine, wildcards.model, wildcards.quant, wildcards.step
    steps = spec_of(e).prepare
    if step not in steps:
        raise WorkflowError(f"{e} has no preparation step {step!r}")
    i = steps.index(step)
    inputs = {"hf": hf_dir(m), "software": engine_software(e), **source_input(e, step)}
    if i > 0:
        inputs["previous"] = prepared_step_json(e, m, q, steps[i - 1])
    return inputs


def prepare_params(wildcards):
    return {
        "options": engine_options(wildcards.engine, wildcards.step),
        "out_dir": prepared_dir(wildcards.engine, wildcards.model, wildcards.quant),
        "kind": kind_of(wildcards.engine),
    }


def prepare_gpu(wildcards):
    return serve_gpu(wildcards)


def env_key_or_none(engine):
    """What stands for a Python engine's software: its env file's key, or the interpreter the
    user brings (`python:`; its `pip freeze` is recorded with the sweep)."""
    eng = config["engines"][engine]
    if spec_of(engine).software != "venv":
        return None
    return eng["python"] if "python" in eng else env_key(engine)


def serve_gpu(wildcards):
    return 1 if engine_uses_gpu(wildcards.engine) else 0


def _run_of(wildcards):
    return wildcards.engine, wildcards.model, wildcards.quant, wildcards.sweep


def table_inputs(wildcards):
    base = sweep_dir(*_run_of(wildcards))
    return {"points": f"{base}/points", "server": f"{base}/server.json"}


def table_summaries(wildcards):
    """Every point the sweep defines, so that a point missing from points/ shows as missing."""
    return summaries_of(*_run_of(wildcards))


def sweep_slos(wildcards=None):
    """{sweep name: its `slo`} of the sweeps that benchmarks name (the capacity table's)."""
    names = sorted({run[3] for run in bench_runs()})
    return {name: config["sweeps"][name].get("slo") for name in names}


def all_table_csvs(wildcards=None):
    return [table_outputs(*run)[0] for run in bench_runs()]


def all_runs(wildcards=None):
    """[summaries, server.json] of every sweep: the tidy results table's sources."""
    return [
        [summaries_of(*run), f"{sweep_dir(*run)}/server.json"] for run in bench_runs()
    ]


def all_server_jsons(wildcards=None):
    return [f"{sweep_dir(*run)}/server.json" for run in bench_runs()]


def all_points_dirs(wildcards=None):
    return [f"{sweep_dir(*run)}/points" for run in bench_runs()]


def decode_sweeps():
    """The decode sweeps that benchmarks run (kind: decode)."""
    names = {run[3] for run in bench_runs()}
    return sorted(n for n in names if config["sweeps"][n].get("kind") == "decode")


def decode_runs():
    return [run for run in bench_runs() if run[3] in decode_sweeps()]


def llama_bench_jsons(wildcards=None):
    """llama-bench beside every llama.cpp model x quant that a decode sweep serves."""
    runs = {r[:3] for r in decode_runs() if spec_of(r[0]).software == "cmake"}
    return [f"results/{e}/{m}/{q}/llama-bench.json" for e, m, q in sorted(runs)]


def decode_models():
    """The decode sweeps' models that have an HF folder (its config.json gives the shape of
    the KV cache; a GGUF-only model's roofline leaves the KV term out)."""
    models = {run[1] for run in decode_runs()}
    return sorted(
        m
        for m in models
        if m in hf_dir_models()
        or (config["models"][m]["source"] == "local" and _local_is_hf_dir(m))
    )


def decode_hf_dirs(wildcards=None):
    return [hf_dir(m) for m in decode_models()]


def decode_uses_gpu(wildcards=None):
    return {run[0]: engine_uses_gpu(run[0]) for run in decode_runs()}


def llama_bench_prompts(wildcards):
    """The prompt file of the first decode sweep this model x quant runs (its depth)."""
    sweep = next(
        r[3] for r in decode_runs() if r[1:3] == (wildcards.model, wildcards.quant)
    )
    return prompts_file(wildcards.model, sweep)


def all_model_sources(wildcards=None):
    return [model_source_json(m) for m in plot_models()]


def env_file_of(wildcards):
    return str(env_path(env_instance(wildcards)))


def convert_hf_input(wildcards):
    return hf_dir(wildcards.model)


def ggml_input(wildcards):
    return f"resources/models/{wildcards.model}/file/original"


def llamacpp_resolved_commit(wildcards):
    eng = config["engines"][wildcards.engine]
    return llamacpp_commit(wildcards.engine) if eng["source"] == "git" else None


def env_conda_file(wildcards):
    # used only under --software-deployment-method conda: the same file the venv is built from
    return str(env_path(env_instance(wildcards)).resolve())


def prompts_tokenizer(wildcards):
    return tokenizer_dir(wildcards.model)


def prompts_workload(wildcards):
    return workloads()[wildcards.workload]


def prompts_count(wildcards):
    return int(wildcards.n)


# validated last: the checks use the path helpers above
_check_config()
