"""Snakemake's side of the run plan (enginebench.plan): the config checked and planned once,
then input and params functions that look the job's wildcards up in PLAN."""

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from enginebench.engines.mlcbuild import RECIPE as MLC_RECIPE
from enginebench.plan.paths import PLOTS
from enginebench.plan import (
    GGUF_OUTTYPES,
    ConfigError,
    Lock,
    Plan,
    Run,
    names_regex,
    validate,
)

try:
    validate(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
    PLAN = Plan(
        config, Lock.beside(list(map(str, workflow.configfiles))), workflow.basedir
    )
    # the llama.cpp whose checkout converts and whose build quantizes every GGUF
    GGUF_SRC, GGUF_BIN = PLAN.gguf_tools.src, PLAN.gguf_tools.bin_dir
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
if PLAN.left_out:
    logger.warning(
        f"completed_only: the aggregates cover {len(PLAN.runs)} run(s); left out, not "
        f"completed: {', '.join(run.dir for run in PLAN.left_out)}"
    )


# path segments: a name never spans a "/" (results/{engine}/{model}/{quant}/{sweep}/...)
wildcard_constraints:
    engine=r"[^/]+",
    model=r"[^/]+",
    quant=r"[^/]+",
    sweep=r"[^/]+",
    step=r"[^/]+",


def all_cores():
    """Threads of the jobs that must own the machine (a sweep, the llama.cpp build): every core
    Snakemake may hand out; 1 where no --cores is given (`snakemake --report`, `-n`)."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def run_of(wildcards):
    return Run(wildcards.engine, wildcards.model, wildcards.quant, wildcards.sweep)


def instance(wildcards):
    return PLAN.instances[wildcards.engine]


def uses_gpu(wildcards):
    return int(instance(wildcards).uses_gpu)


def instance_field(key):
    """A params function: one field of the job's instance entry ({engine})."""
    return lambda wildcards: instance(wildcards).entry.get(key)


def instance_backend(wildcards):
    return instance(wildcards).backend


def plot_outputs():
    """The plots rule's outputs, {<name>_png: report(...), <name>_svg: ...}, from PLOTS."""
    out = {}
    for plot in PLOTS:
        key = plot.name.replace("-", "_")
        out[f"{key}_png"] = report(
            f"results/plots/{{model}}-{plot.name}.png",
            caption=f"../report/{plot.caption}",
            category="Comparison",
            subcategory="{model}",
            labels={"model": "{model}", "item": plot.item},
        )
        out[f"{key}_svg"] = f"results/plots/{{model}}-{plot.name}.svg"
    return out


def model_field(key):
    """A params function: one field of the job's model entry ({model})."""
    return lambda wildcards: PLAN.models[wildcards.model].entry[key]


# models -----------------------------------------------------------------------------------
def hf_dir(wildcards):
    return PLAN.models[wildcards.model].hf_dir


def prepare_inputs(wildcards):
    w = wildcards
    return PLAN.prepare_inputs(w.engine, w.model, w.quant, w.step)


def prepare_params(wildcards):
    w = wildcards
    return PLAN.prepare_params(w.engine, w.model, w.quant, w.step)


# engines ----------------------------------------------------------------------------------
def source_url(wildcards):
    return PLAN.source_param(wildcards.engine, wildcards.label)[0]


def source_ref(wildcards):
    return PLAN.source_param(wildcards.engine, wildcards.label)[1]


def llamacpp_src(wildcards):
    return instance(wildcards).src


def mlc_archive(wildcards):
    return str(instance(wildcards).archive.path)


def mlc_archive_field(key):
    """A params function: one pin of the job's instance's source archive (sha256, commit)."""
    return lambda wildcards: getattr(instance(wildcards).archive, key)


def mlc_build_inputs(wildcards):
    return {"src": instance(wildcards).src, "env": instance(wildcards).env_json}


def llamacpp_commit(wildcards):
    return instance(wildcards).resolved_commit


def env_file(wildcards):
    return str(PLAN.env_instance(wildcards.engine, wildcards.key).env_path)


def env_conda_file(wildcards):
    # used only under --software-deployment-method conda: the same file the venv is built from
    return str(PLAN.env_instance(wildcards.engine, wildcards.key).env_path.resolve())


# serve and sweep --------------------------------------------------------------------------
def tokenizer_dir(wildcards):
    return PLAN.models[wildcards.model].tokenizer_dir


def workload(wildcards):
    return PLAN.workloads[wildcards.workload]


def serve_inputs(wildcards):
    return PLAN.serve_inputs(run_of(wildcards))


def run_spec(wildcards):
    """The run's RunSpec, as builtins (Snakemake's rerun trigger compares their repr)."""
    return PLAN.run_spec(run_of(wildcards)).as_param()


# aggregate --------------------------------------------------------------------------------
def table_summaries(wildcards):
    """Every point the sweep defines, so that a point missing from points/ shows as missing."""
    return PLAN.summaries(run_of(wildcards))


# fidelity ---------------------------------------------------------------------------------
def fidelity_inputs(wildcards):
    return PLAN.fidelity_inputs(wildcards.engine, wildcards.model, wildcards.quant)


def llama_kld_inputs(wildcards):
    return PLAN.llama_kld_inputs(wildcards.engine, wildcards.model, wildcards.quant)


def fidelity_spec(wildcards):
    """The collection's RunSpec, as builtins (as run_spec)."""
    w = wildcards
    return PLAN.fidelity_spec(w.engine, w.model, w.quant).as_param()


# decode -----------------------------------------------------------------------------------
def llama_bench_inputs(wildcards):
    tool, model = instance(wildcards), PLAN.models[wildcards.model]
    return {
        "build": tool.software_file or [],
        "bench": f"{tool.bin_dir}/llama-bench",
        "model": model.gguf_file(wildcards.quant),
        "prompts": PLAN.llama_bench_prompts(wildcards.model, wildcards.quant),
    }
