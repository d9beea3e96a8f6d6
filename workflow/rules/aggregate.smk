# Aggregate: per-engine tables, the tidy results table and what renders from it (the
# cross-engine comparison, capacity, plots), manifest and provenance.


rule engine_table:
    input:
        points="results/{engine}/{model}/{quant}/{sweep}/points",
        server="results/{engine}/{model}/{quant}/{sweep}/server.json",
    output:
        csv="results/{engine}/{model}/{quant}/{sweep}/table.csv",
        md="results/{engine}/{model}/{quant}/{sweep}/table.md",
        html=report(
            "results/{engine}/{model}/{quant}/{sweep}/table.html",
            caption="../report/engine_table.rst",
            category="{engine}",
            subcategory="{model}",
            labels={
                "engine": "{engine}",
                "model": "{model}",
                "quant": "{quant}",
                "sweep": "{sweep}",
                "item": "table",
            },
        ),
    log:
        "logs/engine_table/{engine}/{model}/{quant}/{sweep}.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        summaries=table_summaries,
    script:
        "../scripts/engine_table.py"


# Aggregates name one output per run (its points folder, or its table): that brings in the
# run's job, and the job's other outputs (server.json beside the points) are read from the
# params. Every input is matched against every rule's outputs when the DAG is built, so a
# thousand-run config plans measurably faster with one input per run than with three.
rule results_table:
    input:
        points=PLAN.points_dirs,
    output:
        csv=report(
            "results/results.csv",
            caption="../report/results.rst",
            category="Comparison",
            subcategory="all engines",
            labels={"item": "tidy results table"},
        ),
        parquet="results/results.parquet",
    log:
        "logs/results_table/results_table.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        runs=PLAN.results_sources,
    script:
        "../scripts/results_table.py"


rule comparison:
    input:
        "results/results.parquet",
    output:
        csv="results/comparison.csv",
        md="results/comparison.md",
        html=report(
            "results/comparison.html",
            caption="../report/comparison.rst",
            category="Comparison",
            subcategory="all engines",
            labels={"item": "cross-engine comparison"},
        ),
    log:
        "logs/comparison/comparison.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        slo=PLAN.sweep_slos,
        instances=PLAN.instance_differences,
    script:
        "../scripts/comparison.py"


rule capacity:
    input:
        "results/results.parquet",
    output:
        csv="results/capacity.csv",
        md="results/capacity.md",
        html=report(
            "results/capacity.html",
            caption="../report/capacity.rst",
            category="Capacity and decode",
            subcategory="all engines",
            labels={"item": "capacity"},
        ),
    log:
        "logs/capacity/capacity.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        slo=PLAN.sweep_slos,
    script:
        "../scripts/capacity.py"


rule plots:
    input:
        "results/results.parquet",
    output:
        **plot_outputs(),
    log:
        "logs/plots/{model}.log",
    conda:
        "../../envs/enginebench.yaml"
    script:
        "../scripts/plots.py"


rule manifest:
    input:
        models=PLAN.model_sources,
        tables=PLAN.table_csvs,
    output:
        manifest="results/manifest.json",
        html=report(
            "results/provenance.html",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory="this run",
            labels={"item": "provenance"},
        ),
    log:
        "logs/manifest/manifest.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        runs=PLAN.results_sources,
        left_out=[run.dir for run in PLAN.left_out],
    script:
        "../scripts/manifest.py"
