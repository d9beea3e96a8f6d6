# Serve and sweep: one job per engine x model x quant owns the server for the whole sweep.


rule materialize_prompts:
    input:
        tokenizer=prompts_tokenizer,
    output:
        "results/datasets/{model}/{workload}.jsonl",
    log:
        "logs/materialize_prompts/{model}-{workload}.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        workload=config["workload"],
        num_prompts=max_prompts_needed(),
    script:
        "../scripts/materialize_prompts.py"


rule serve_sweep:
    input:
        unpack(serve_inputs),
    output:
        expand(
            "results/{{engine}}/{{model}}/{{quant}}/sweep/{point}.{ext}",
            point=sweep_points(),
            ext=["json", "jsonl"],
        ),
        server="results/{engine}/{model}/{quant}/sweep/server.json",
    log:
        server="logs/serve/{engine}/{model}/{quant}.server.log",
        sweep="logs/serve/{engine}/{model}/{quant}.log",
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    resources:
        gpu=serve_gpu,
    params:
        p=serve_params,
        out_dir=serve_out_dir,
    script:
        "../scripts/serve_sweep.py"
