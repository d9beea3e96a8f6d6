"""llama-bench on the workflow's own llama.cpp build and GGUF: tg at depth 0 and at the decode
prompt's depth, beside the served single-stream decode."""

import json
import subprocess
from pathlib import Path

from enginebench.engines.llamabench import llama_bench_argv, parse_llama_bench_json
from enginebench.loadgen.datasets import load_materialized
from enginebench.scriptio import logged

inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards
with logged(snakemake.log[0]):
    depth = int(load_materialized(inp.prompts)[0].prompt_len or 0)
    argv = llama_bench_argv(
        Path(inp.bench).parent, inp.model, n_gen=p.n_gen, depth=sorted({0, depth}),
        n_gpu_layers=p.n_gpu_layers, extra_args=p.extra_args,
    )  # fmt: skip
    print(" ".join(argv), flush=True)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    print(done.stderr[-4000:])
    if done.returncode != 0:
        raise SystemExit(f"llama-bench exited {done.returncode}; see {snakemake.log[0]}")
    rows = parse_llama_bench_json(done.stdout)
    record = {"engine": w.engine, "model": w.model, "quant": w.quant, "depth": depth,
              "argv": argv, "rows": rows}  # fmt: skip
    Path(snakemake.output[0]).write_text(json.dumps(record, indent=1) + "\n")
