# Single-stream decode beside llama-bench, held against the memory bandwidth (the roofline).

BANDWIDTH_WHEN = ["before", "after"]


# Measured before the sweeps (first: top priority) and once they have all ended (after the
# results table); the decode table holds results against the higher of the two.
rule memory_bandwidth:
    input:
        lambda w: ["results/results.parquet"] if w.when == "after" else [],
    output:
        "results/hardware/bandwidth-{when}.json",
    log:
        "logs/memory_bandwidth/{when}.log",
    wildcard_constraints:
        when="before|after",
    priority: 100
    conda:
        "../../envs/enginebench.yaml"
    # the whole machine: a copy measured beside a running benchmark would measure both
    threads: all_cores()
    params:
        bandwidth_gb_s=config["roofline"].get("bandwidth_gb_s"),
    script:
        "../scripts/memory_bandwidth.py"


rule llama_bench:
    input:
        unpack(llama_bench_inputs),
    output:
        "results/{engine}/{model}/{quant}/llama-bench.json",
    log:
        "logs/llama_bench/{engine}/{model}/{quant}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.instances_of("llamacpp")),
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    resources:
        gpu=uses_gpu,
    params:
        n_gen=128,
        n_gpu_layers=None,
        extra_args=[],
    script:
        "../scripts/llama_bench.py"


rule decode_table:
    input:
        results="results/results.parquet",
        llama_bench=PLAN.llama_bench_jsons,
        bandwidth=expand("results/hardware/bandwidth-{when}.json", when=BANDWIDTH_WHEN),
        hf=PLAN.decode_hf_dirs,
        fidelity=PLAN.decode_fidelity_scores,
    output:
        csv="results/decode.csv",
        md="results/decode.md",
        html=report(
            "results/decode.html",
            caption="../report/decode.rst",
            category="Capacity and decode",
            subcategory="all engines",
            labels={"item": "single-stream decode and roofline"},
        ),
    log:
        "logs/decode_table/decode_table.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        sweeps=PLAN.decode_sweeps,
        models=PLAN.decode_models,
        uses_gpu=PLAN.decode_uses_gpu,
        bandwidth_when=BANDWIDTH_WHEN,
    script:
        "../scripts/decode_table.py"
