# Engines: each engine's software at a pinned version or commit.


# One source tree and one build per llama.cpp instance ({engine}: its name under `engines:`),
# sharing nothing mutable (ccache aside).
rule llamacpp_source:
    output:
        directory("resources/engines/{engine}/src-{tag}"),
    log:
        "logs/llamacpp_source/{engine}-{tag}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.instances_of("llamacpp")),
        tag=r"(pypi|git)-[A-Za-z0-9._-]+",
    conda:
        "../../envs/enginebench.yaml"
    params:
        source=instance_field("source"),
        version=instance_field("version"),
        sha256=instance_field("sha256"),
        git_url=instance_field("git_url"),
        commit=llamacpp_commit,
    script:
        "../scripts/fetch_llamacpp_source.py"


# Code an engine runs that no wheel holds (EngineSpec.source: TensorRT-LLM's conversion scripts,
# TabbyAPI's server), at its pinned tag or commit; the commit it resolves to is recorded in
# enginebench-source.json inside. Planned only for engines whose config gives no `source_dir`.
rule engine_source:
    output:
        directory("resources/engines/{engine}/src-{label}"),
    log:
        "logs/engine_source/{engine}-{label}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.source_instances),
        label=r"[A-Za-z0-9_][A-Za-z0-9._+-]*",
    conda:
        "../../envs/enginebench.yaml"
    params:
        url=source_url,
        ref=source_ref,
    script:
        "../scripts/fetch_engine_source.py"


rule build_llamacpp:
    input:
        src=llamacpp_src,
    output:
        build="resources/engines/{engine}/{build}/bin/build.json",
        server="resources/engines/{engine}/{build}/bin/llama-server",
        quantize="resources/engines/{engine}/{build}/bin/llama-quantize",
        bench="resources/engines/{engine}/{build}/bin/llama-bench",
    log:
        "logs/build_llamacpp/{engine}-{build}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.instances_of("llamacpp")),
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    params:
        backend=instance_backend,
        cmake_flags=instance_field("cmake_flags"),
        cuda_architectures=instance_field("cuda_architectures"),
    script:
        "../scripts/build_llamacpp.py"


# One more llama.cpp tool from a finished build (llama-perplexity for fidelity's cross-check),
# beside its bin/: the build and what depends on it stay as they are.
rule llama_tool:
    input:
        build="resources/engines/{engine}/{build}/bin/build.json",
    output:
        "resources/engines/{engine}/{build}/tools/{tool}",
    log:
        "logs/llama_tool/{engine}-{build}-{tool}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.instances_of("llamacpp")),
        tool="llama-perplexity",
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    script:
        "../scripts/llama_tool.py"


# MLC-LLM from its pinned source archive (EngineSpec.source_archive, or the config's `archive`):
# checked against its sha256 and unpacked, then built into a wheel by its environment's python
# and installed beside it (<build>/site, on the PYTHONPATH of its jobs).
rule mlc_source:
    input:
        mlc_archive,
    output:
        directory("resources/engines/{engine}/src-{tag}"),
    log:
        "logs/mlc_source/{engine}-{tag}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.mlc_builds),
        tag=r"archive-[0-9a-f]{12}",
    conda:
        "../../envs/enginebench.yaml"
    params:
        sha256=mlc_archive_field("sha256"),
        commit=mlc_archive_field("commit"),
    script:
        "../scripts/mlc_source.py"


rule build_mlc:
    input:
        unpack(mlc_build_inputs),
    output:
        "resources/engines/{engine}/{build}/build.json",
    log:
        "logs/build_mlc/{engine}-{build}.log",
    wildcard_constraints:
        engine=names_regex(PLAN.mlc_builds),
    conda:
        "../../envs/enginebench.yaml"
    threads: all_cores()
    params:
        recipe=MLC_RECIPE,  # how it is built (CMake settings, TVM from the wheel): a change rebuilds
    script:
        "../scripts/build_mlc.py"


# One environment per engine, keyed by the hash of its envs/ file: a version bump makes a new
# key, so only that engine's environment (and its sweeps) rebuild. With
# --software-deployment-method conda the same file builds a conda env instead of a venv.
rule engine_env:
    input:
        env_file,
    output:
        "resources/envs/{engine}-{key}/env.json",
    log:
        "logs/engine_env/{engine}-{key}.log",
    conda:
        env_conda_file
    script:
        "../scripts/engine_env.py"
