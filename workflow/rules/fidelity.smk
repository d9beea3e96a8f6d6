# Quality beside speed: each engine x model x quant's greedy next-token distributions against
# the reference model (transformers on the HF weights), and the table that puts them beside
# each quant's speed.


rule fidelity_collect:
    input:
        unpack(fidelity_inputs),
    output:
        records="results/{engine}/{model}/{quant}/fidelity-engine.jsonl",
        server="results/{engine}/{model}/{quant}/fidelity-server.json",
    log:
        server="logs/fidelity/{engine}/{model}/{quant}.server.log",
        collect="logs/fidelity/{engine}/{model}/{quant}.log",
    conda:
        "../../envs/enginebench.yaml"
    # its own server, started as the benchmark's sweeps start theirs: the whole machine
    threads: all_cores()
    resources:
        gpu=uses_gpu,
    params:
        spec=fidelity_spec,
    script:
        "../scripts/fidelity_collect.py"


rule fidelity_score:
    input:
        records="results/{engine}/{model}/{quant}/fidelity-engine.jsonl",
        server="results/{engine}/{model}/{quant}/fidelity-server.json",
        hf=hf_dir,
    output:
        "results/{engine}/{model}/{quant}/fidelity-score.json",
    log:
        "logs/fidelity/{engine}/{model}/{quant}.score.log",
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    resources:
        gpu=int(config["fidelity"]["reference"]["device"] != "cpu"),
    params:
        max_tokens=config["fidelity"]["max_tokens"],
        reference=config["fidelity"]["reference"],
    script:
        "../scripts/fidelity_score.py"


# llama.cpp's own full-vocabulary KL of each quantized GGUF against the f16 (llama-perplexity
# --kl-divergence), on the text of fidelity's prompts: a cross-check beside the API's top-k.
rule llama_kld:
    input:
        unpack(llama_kld_inputs),
    output:
        "results/{engine}/{model}/{quant}/llama-kld.json",
    log:
        "logs/llama_kld/{engine}/{model}/{quant}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.instances_of("llamacpp")),
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    resources:
        gpu=uses_gpu,
    params:
        ctx=128,  # tokens per chunk; half of each is scored
        n_gpu_layers=instance_field("n_gpu_layers"),  # as its server offloads
    script:
        "../scripts/llama_kld.py"


rule fidelity_table:
    input:
        scores=PLAN.fidelity_scores,
        kld=PLAN.llama_kld_jsons,
        results="results/results.parquet",
    output:
        csv="results/fidelity.csv",
        md="results/fidelity.md",
        html=report(
            "results/fidelity.html",
            caption="../report/fidelity.rst",
            category="Fidelity",
            subcategory="all engines",
            labels={"item": "fidelity beside speed"},
        ),
        png=report(
            "results/plots/fidelity.png",
            caption="../report/fidelity_plot.rst",
            category="Fidelity",
            subcategory="all engines",
            labels={"item": "speed against KL"},
        ),
        svg="results/plots/fidelity.svg",
    log:
        "logs/fidelity_table/fidelity_table.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        decode_sweeps=PLAN.decode_sweeps,
    script:
        "../scripts/fidelity_table.py"
