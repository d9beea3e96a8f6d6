# Aggregate: per-engine tables, the cross-engine comparison, plots, manifest and provenance.


rule engine_table:
    input:
        unpack(table_inputs),
    output:
        csv="results/{engine}/{model}/{quant}/table.csv",
        md="results/{engine}/{model}/{quant}/table.md",
        html=report(
            "results/{engine}/{model}/{quant}/table.html",
            caption="../report/engine_table.rst",
            category="{engine}",
            subcategory="{model}",
            labels={
                "engine": "{engine}",
                "model": "{model}",
                "quant": "{quant}",
                "item": "table",
            },
        ),
    log:
        "logs/engine_table/{engine}-{model}-{quant}.log",
    conda:
        "../../envs/enginebench.yaml"
    script:
        "../scripts/engine_table.py"


rule comparison:
    input:
        all_table_csvs,
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
    script:
        "../scripts/comparison.py"


rule plots:
    input:
        model_table_csvs,
    output:
        ttft_png=report(
            "results/plots/{model}-ttft.png",
            caption="../report/ttft.rst",
            category="Comparison",
            subcategory="{model}",
            labels={"model": "{model}", "item": "TTFT vs rate"},
        ),
        ttft_svg="results/plots/{model}-ttft.svg",
        tpot_png=report(
            "results/plots/{model}-tpot.png",
            caption="../report/tpot.rst",
            category="Comparison",
            subcategory="{model}",
            labels={"model": "{model}", "item": "TPOT vs rate"},
        ),
        tpot_svg="results/plots/{model}-tpot.svg",
        throughput_png=report(
            "results/plots/{model}-throughput.png",
            caption="../report/throughput.rst",
            category="Comparison",
            subcategory="{model}",
            labels={"model": "{model}", "item": "throughput vs offered rate"},
        ),
        throughput_svg="results/plots/{model}-throughput.svg",
    log:
        "logs/plots/{model}.log",
    conda:
        "../../envs/enginebench.yaml"
    script:
        "../scripts/plots.py"


rule manifest:
    input:
        servers=all_server_jsons,
        summaries=all_summaries,
        models=all_model_sources,
        tables=all_table_csvs,
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
    script:
        "../scripts/manifest.py"
