"""One seeded prompt file per model and workload: every engine is sent the same prompts."""

from enginebench.loadgen.cli_args import parse_args
from enginebench.loadgen.datasets import materialize
from enginebench.scriptio import logged

w = snakemake.params.workload
argv = [
    "--dataset-name", w["dataset"],
    "--tokenizer", snakemake.input.tokenizer,
    "--num-prompts", str(snakemake.params.num_prompts),
    "--random-input-len", str(w["input_len"]),
    "--random-output-len", str(w["output_len"]),
    "--fixed-output-len", str(w["output_len"]),
    "--seed", str(w["seed"]),
    "--save-prompts", snakemake.output[0],
]  # fmt: skip
if w["prefix_len"]:
    argv += ["--random-prefix-len", str(w["prefix_len"])]
    argv += ["--random-prefix-groups", str(w["prefix_groups"])]
    argv += ["--random-prefix-order", w["prefix_order"]]
if w.get("dataset_path"):
    argv += ["--dataset-path", w["dataset_path"]]
with logged(snakemake.log[0]):
    materialize(parse_args(argv))
