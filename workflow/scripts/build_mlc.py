"""MLC-LLM's wheel, built with its environment's python and installed beside it."""

from pathlib import Path

from enginebench.engines.mlcbuild import build_mlc
from enginebench.engines.source import RECORD
from enginebench.scriptio import logged, read_json, write_json

inp, out = snakemake.input, Path(snakemake.output[0])
with logged(snakemake.log[0]):
    env = read_json(inp.env)
    info = build_mlc(Path(inp.src), out.parent, env["python"], jobs=snakemake.threads)
    info["source"] = read_json(Path(inp.src) / RECORD)
    info["tvm_env"] = {"env_file": env.get("env_file"), "key": env.get("key")}
    write_json(out, {"kind": "wheel", **info})
