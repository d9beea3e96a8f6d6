"""llama-perplexity's full-vocabulary KL of one GGUF against the model's f16, on the text of
fidelity's prompts."""

import json
import subprocess
import tempfile
from pathlib import Path

from enginebench.engines.llamakld import kld_argv, parse_kld, tool_env
from enginebench.loadgen.datasets import load_materialized
from enginebench.scriptio import logged, write_json

inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards
with logged(snakemake.log[0]), tempfile.TemporaryDirectory() as tmp:
    text, base = Path(tmp) / "text.txt", Path(tmp) / "base.kld"
    text.write_text("".join(row.prompt for row in load_materialized(inp.prompts)))
    env = tool_env(inp.tool, Path(inp.build).parent)
    record = {"engine": w.engine, "model": w.model, "quant": w.quant, "base": inp.base,
              "ctx": p.ctx}  # fmt: skip
    ngl = [] if p.n_gpu_layers is None else ["-ngl", str(p.n_gpu_layers)]
    for name, argv in (
        ("base_argv", kld_argv(inp.tool, inp.base, base, text=text, ctx=p.ctx, extra=ngl)),
        ("argv", kld_argv(inp.tool, inp.gguf, base, ctx=p.ctx, extra=ngl)),
    ):
        print(" ".join(argv), flush=True)
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        print(done.stderr[-3000:], flush=True)
        if done.returncode != 0:
            raise SystemExit(f"llama-perplexity exited {done.returncode}; see {snakemake.log[0]}")
        record[name] = argv
    write_json(snakemake.output[0], {**record, **parse_kld(done.stdout + done.stderr)})
    print(json.dumps(record))
