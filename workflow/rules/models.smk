# Models: fetch or synthesize the weights, convert to GGUF, quantize.


rule synthesize_model:
    output:
        hf=directory("resources/models/{model}/hf"),
        source="resources/models/{model}/source.json",
    log:
        "logs/synthesize_model/{model}.log",
    wildcard_constraints:
        model=names_regex(PLAN.models_of("synthetic")),
    conda:
        "../../envs/enginebench.yaml"
    params:
        preset=model_field("preset"),
        seed=model_field("seed"),
        dtype=model_field("dtype"),
    script:
        "../scripts/synthesize_model.py"


rule fetch_hf_model:
    output:
        hf=directory("resources/models/{model}/hf"),
        source="resources/models/{model}/source.json",
    log:
        "logs/fetch_hf_model/{model}.log",
    wildcard_constraints:
        model=names_regex(PLAN.models_of("hf")),
    conda:
        "../../envs/enginebench.yaml"
    params:
        repo=model_field("repo"),
        revision=model_field("revision"),
    script:
        "../scripts/fetch_hf_model.py"


rule fetch_gguf_model:
    output:
        file="resources/models/{model}/file/original",
        source="resources/models/{model}/source.json",
    log:
        "logs/fetch_gguf_model/{model}.log",
    wildcard_constraints:
        model=names_regex(PLAN.models_of("gguf")),
    conda:
        "../../envs/enginebench.yaml"
    params:
        repo=model_field("repo"),
        filename=model_field("filename"),
        revision=model_field("revision"),
    script:
        "../scripts/fetch_gguf_model.py"


rule describe_local_model:
    output:
        source="resources/models/{model}/source.json",
    log:
        "logs/describe_local_model/{model}.log",
    wildcard_constraints:
        model=names_regex(PLAN.models_of("local")),
    conda:
        "../../envs/enginebench.yaml"
    params:
        path=model_field("path"),
    script:
        "../scripts/describe_local_model.py"


rule fetch_tokenizer:
    output:
        directory("resources/models/{model}/tokenizer"),
    log:
        "logs/fetch_tokenizer/{model}.log",
    conda:
        "../../envs/enginebench.yaml"
    params:
        tokenizer=model_field("tokenizer"),
    script:
        "../scripts/fetch_tokenizer.py"


rule ggml_to_gguf:
    input:
        ggml="resources/models/{model}/file/original",
        src=GGUF_SRC,
    output:
        "resources/models/{model}/file/converted.gguf",
    log:
        "logs/ggml_to_gguf/{model}.log",
    conda:
        "../../envs/enginebench.yaml"
    script:
        "../scripts/ggml_to_gguf.py"


rule convert_gguf:
    input:
        hf=hf_dir,
        src=GGUF_SRC,
    output:
        "resources/models/{model}/gguf/{outtype}.gguf",
    log:
        "logs/convert_gguf/{model}-{outtype}.log",
    wildcard_constraints:
        outtype="|".join(GGUF_OUTTYPES),
    conda:
        "../../envs/enginebench.yaml"
    script:
        "../scripts/convert_gguf.py"


rule quantize_gguf:
    input:
        gguf="resources/models/{model}/gguf/f16.gguf",
        build=f"{GGUF_BIN}/build.json",
        quantize=f"{GGUF_BIN}/llama-quantize",
    output:
        "resources/models/{model}/gguf/{quant}.gguf",
    log:
        "logs/quantize_gguf/{model}-{quant}.log",
    wildcard_constraints:
        quant=f"(?!(?:{'|'.join(GGUF_OUTTYPES)})$)[A-Za-z0-9_]+",
    conda:
        "../../envs/enginebench.yaml"
    script:
        "../scripts/quantize_gguf.py"


# Engine-specific preparation (MLC convert_weight/gen_config/compile, TensorRT-LLM
# convert_checkpoint/build_engine, EXL2 convert): one job per step, in the engine's order.
rule prepare_model:
    input:
        unpack(prepare_inputs),
    output:
        "resources/prepared/{engine}/{model}/{quant}/{step}.json",
    log:
        "logs/prepare_model/{engine}-{model}-{quant}-{step}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.prepared_instances),
        step=names_regex(PLAN.prepare_steps),
    conda:
        "../../envs/enginebench.yaml"
    resources:
        gpu=uses_gpu,
    params:
        p=prepare_params,
    script:
        "../scripts/prepare_model.py"
