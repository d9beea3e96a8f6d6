# Single-stream decode beside llama-bench, held against the memory bandwidth (the roofline).


rule memory_bandwidth:
    output:
        "results/hardware/bandwidth.json",
    log:
        "logs/memory_bandwidth/memory_bandwidth.log",
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
        build=lambda w: engine_software(w.engine),
        bench=lambda w: f"{llamacpp_bin_dir(w.engine)}/llama-bench",
        model=lambda w: gguf_file(w.model, w.quant),
        prompts=llama_bench_prompts,
    output:
        "results/{engine}/{model}/{quant}/llama-bench.json",
    log:
        "logs/llama_bench/{engine}/{model}/{quant}.log",
    wildcard_constraints:
        engine=_names_regex(instances_of("llamacpp")),
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    resources:
        gpu=lambda w: int(engine_uses_gpu(w.engine)),
    params:
        n_gen=128,
        n_gpu_layers=None,
        extra_args=[],
    script:
        "../scripts/llama_bench.py"


rule decode_table:
    input:
        results="results/results.parquet",
        llama_bench=llama_bench_jsons,
        bandwidth="results/hardware/bandwidth.json",
        hf=decode_hf_dirs,
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
        sweeps=decode_sweeps(),
        models=decode_models(),
        uses_gpu=decode_uses_gpu(),
    script:
        "../scripts/decode_table.py"
