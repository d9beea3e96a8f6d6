"""Every path the workflow plans, relative to its working directory: the rules' output patterns
spell the same paths with wildcards (workflow/rules/*.smk)."""

from __future__ import annotations

from typing import NamedTuple

TABLE_FORMATS = ("csv", "md", "html")
PLOT_FORMATS = ("png", "svg")


class Plot(NamedTuple):
    """One figure of a model's comparison, results/plots/<model>-<name>.<format>: the one place
    a plot is declared (the plots rule's outputs and report captions, the figures drawn)."""

    name: str
    kind: str  # what it draws: ttft, tpot (percentiles), throughput, pareto
    mode: str | None  # the points it draws: rate or concurrency; None: both
    item: str  # its label in the report

    @property
    def caption(self) -> str:
        """Its caption file, under workflow/report/."""
        return f"{self.name.replace('-', '_')}.rst"


PLOTS = (
    Plot("ttft", "ttft", "rate", "TTFT vs rate"),
    Plot("tpot", "tpot", "rate", "TPOT vs rate"),
    Plot("throughput", "throughput", "rate", "throughput vs offered rate"),
    Plot("ttft-conc", "ttft", "concurrency", "TTFT vs concurrency"),
    Plot("tpot-conc", "tpot", "concurrency", "TPOT vs concurrency"),
    Plot("throughput-conc", "throughput", "concurrency", "throughput vs concurrency"),
    Plot("pareto", "pareto", None, "throughput per user vs in total"),
)


# models ----------------------------------------------------------------------------------------
def model_dir(model: str) -> str:
    return f"resources/models/{model}"


def model_source_json(model: str) -> str:
    return f"{model_dir(model)}/source.json"


def prepared_dir(engine: str, model: str, quant: str) -> str:
    return f"resources/prepared/{engine}/{model}/{quant}/out"


def prepared_step_json(engine: str, model: str, quant: str, step: str) -> str:
    return f"resources/prepared/{engine}/{model}/{quant}/{step}.json"


# engines ---------------------------------------------------------------------------------------
# a model's sha256, computed once for every sweep that serves it (models.files.weights_sha256)
HASH_CACHE = "resources/cache/sha256"


def engine_dir(engine: str) -> str:
    return f"resources/engines/{engine}"


def env_json(kind: str, key: str) -> str:
    """The environment built from an env file (instances of one engine with one file share it)."""
    return f"resources/envs/{kind}-{key}/env.json"


# results ---------------------------------------------------------------------------------------
def prompts_file(model: str, workload: str, rows: int) -> str:
    return f"results/datasets/{model}/{workload}/{rows}.jsonl"


def sweep_dir(engine: str, model: str, quant: str, sweep: str) -> str:
    return f"results/{engine}/{model}/{quant}/{sweep}"


def server_log(engine: str, model: str, quant: str, sweep: str) -> str:
    """The log of a serve job's server (the rule's `log: server`)."""
    return f"logs/serve/{engine}/{model}/{quant}/{sweep}.server.log"


def fidelity_path(engine: str, model: str, quant: str, name: str) -> str:
    """Fidelity's files beside the engine x model x quant's sweeps: `engine.jsonl` (what the
    engine answered), `server.json` (its server), `score.json` (against the reference)."""
    return f"results/{engine}/{model}/{quant}/fidelity-{name}"


def llama_kld_json(engine: str, model: str, quant: str) -> str:
    return f"results/{engine}/{model}/{quant}/llama-kld.json"


def llama_bench_json(engine: str, model: str, quant: str) -> str:
    return f"results/{engine}/{model}/{quant}/llama-bench.json"


def tables(stem: str) -> list[str]:
    """`<stem>.csv`, `.md` and `.html`: one table in every format."""
    return [f"{stem}.{ext}" for ext in TABLE_FORMATS]


def plots(model: str) -> list[str]:
    return [f"results/plots/{model}-{p.name}.{fmt}" for p in PLOTS for fmt in PLOT_FORMATS]
