"""Every path the workflow plans, relative to its working directory: the rules' output patterns
spell the same paths with wildcards (workflow/rules/*.smk)."""

from __future__ import annotations

TABLE_FORMATS = ("csv", "md", "html")
PLOT_NAMES = tuple(
    f"{kind}{loop}.{ext}"
    for kind in ("ttft", "tpot", "throughput")
    for loop in ("", "-conc")
    for ext in ("png", "svg")
) + tuple(f"pareto.{ext}" for ext in ("png", "svg"))


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


def llama_bench_json(engine: str, model: str, quant: str) -> str:
    return f"results/{engine}/{model}/{quant}/llama-bench.json"


def tables(stem: str) -> list[str]:
    """`<stem>.csv`, `.md` and `.html`: one table in every format."""
    return [f"{stem}.{ext}" for ext in TABLE_FORMATS]


def plots(model: str) -> list[str]:
    return [f"results/plots/{model}-{name}" for name in PLOT_NAMES]
