"""One seeded prompt file per model and workload: every engine is sent the same prompts."""

from enginebench.bench_command import materialize_argv
from enginebench.loadgen.cli_args import parse_args
from enginebench.loadgen.datasets import materialize
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    argv = materialize_argv(
        snakemake.params.workload,
        snakemake.input.tokenizer,
        snakemake.params.num_prompts,
        snakemake.output[0],
    )
    materialize(parse_args(argv))
