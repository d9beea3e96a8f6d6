"""llama-perplexity's full-vocabulary KL of one GGUF against the model's f16, on the text of
fidelity's prompts."""

from pathlib import Path

from enginebench.engines.llamakld import measure_kld
from enginebench.loadgen.datasets import load_materialized
from enginebench.scriptio import logged, write_json

inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards
with logged(snakemake.log[0]):
    text = "".join(row.prompt for row in load_materialized(inp.prompts))
    ngl = [] if p.n_gpu_layers is None else ["-ngl", str(p.n_gpu_layers)]
    stats = measure_kld(
        inp.tool, inp.base, inp.gguf, text, Path(inp.build).parent, ctx=p.ctx, extra=ngl
    )
    record = {"engine": w.engine, "model": w.model, "quant": w.quant, "base": inp.base,
              "ctx": p.ctx}  # fmt: skip
    write_json(snakemake.output[0], {**record, **stats})
