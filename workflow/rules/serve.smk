# Serve and sweep: one job per engine x model x quant x named sweep owns the server for the
# whole sweep.


from enginebench.engines.server import relay_sigterm


onstart:
    # a SIGTERM to Snakemake alone reaches the serve jobs too (they stop in seconds)
    relay_sigterm("serve_sweep.py")


rule materialize_prompts:
    input:
        tokenizer=tokenizer_dir,
    output:
        "results/datasets/{model}/{workload}/{n}.jsonl",
    log:
        "logs/materialize_prompts/{model}-{workload}-{n}.log",
    wildcard_constraints:
        n=r"\d+",
    conda:
        "../../envs/enginebench.yaml"
    params:
        workload=workload,
        num_prompts=lambda w: int(w.n),
    script:
        "../scripts/materialize_prompts.py"


rule serve_sweep:
    input:
        unpack(serve_inputs),
    output:
        # a directory: the points come from the named sweep, and differ between sweeps
        points=directory("results/{engine}/{model}/{quant}/{sweep}/points"),
        server="results/{engine}/{model}/{quant}/{sweep}/server.json",
    log:
        server="logs/serve/{engine}/{model}/{quant}/{sweep}.server.log",
        sweep="logs/serve/{engine}/{model}/{quant}/{sweep}.log",
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    resources:
        gpu=uses_gpu,
    params:
        spec=run_spec,
    script:
        "../scripts/serve_sweep.py"
