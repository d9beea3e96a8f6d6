from snakemake.utils import min_version

min_version("9.20")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/engines.smk"
include: "workflow/rules/serve.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/decode.smk"
include: "workflow/rules/fidelity.smk"


report: "workflow/report/workflow.rst"


# small aggregation jobs run on the submitting node, not as cluster jobs
localrules:
    all,
    engine_table,
    comparison,
    capacity,
    plots,
    manifest,
    results_table,
    decode_table,
    fidelity_table,


rule all:
    default_target: True
    input:
        PLAN.final_outputs,
