"""One model-preparation step of an engine (its exact argv from the engine's declaration)."""

from pathlib import Path

from enginebench.engines.prepare import run_step
from enginebench.engines.spec import PrepareContext
from enginebench.scriptio import logged, read_json, write_json

inp, w, p = snakemake.input, snakemake.wildcards, snakemake.params.p
software = read_json(inp.software) if inp.get("software") else {}
python = software.get("python") or p["options"].get("python")
ctx = PrepareContext(str(inp.hf), p["out_dir"], w.quant, p["options"], python=python)
with logged(snakemake.log[0]):
    # a built wheel's PYTHONPATH, then the engine's own variables (as its server gets them)
    log, env = Path(snakemake.log[0]), {**software.get("env", {}), **p["env"]}
    write_json(snakemake.output[0], run_step(p["kind"], w.step, ctx, log, env=env))
