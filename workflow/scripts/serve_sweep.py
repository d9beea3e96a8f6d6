"""Own one engine server for one named sweep: start, warm up, run the points in order, stop."""

import contextlib
import sys
from pathlib import Path

from enginebench.engines.prepare import context, prepared_model
from enginebench.engines.source import RECORD, SourceError, git_head
from enginebench.models.sources import model_sha
from enginebench.points import points_from_config
from enginebench.scriptio import logged, read_json
from enginebench.slo_search import Search
from enginebench.sweep import (
    SweepConfig,
    run_sweep,
    set_aside,
    sweep_bench_args,
)

inp, p, w = snakemake.input, snakemake.params.p, snakemake.wildcards
software = read_json(inp.software) if inp.get("software") else {}
model_source = read_json(inp.model_source)
model = str(inp.model) if inp.get("model") else w.model
kind = p["kind"]  # the engine {engine} is an instance of
if p["prepared_dir"]:  # MLC / TensorRT-LLM / EXL2: what the last preparation step made
    pctx = context(kind, inp.tokenizer, p["prepared_dir"], w.quant, p["options"])
    model = prepared_model(kind, pctx)
engine_commit = (software.get("source") or {}).get("commit")  # llama.cpp: what was built
source_commit = None  # code run from a git checkout (TabbyAPI, TensorRT-LLM's scripts)
if inp.get("source"):  # fetched by the workflow: its record
    source_commit = read_json(Path(inp.source) / RECORD).get("commit")
elif p["source_dir"]:  # the user's own checkout: its HEAD, when it is a git tree
    with contextlib.suppress(SourceError):
        source_commit = git_head(Path(p["source_dir"]))
cfg = SweepConfig(
    engine=kind,
    instance=w.engine,
    model=model,
    served_name=w.model,
    quant=w.quant,
    sweep=w.sweep,
    out_dir=snakemake.output.points,
    server_json=snakemake.output.server,
    hash_cache="resources/cache/sha256",  # the model's hash, read once for all its sweeps
    prompts_file=inp.prompts,
    tokenizer=inp.tokenizer,
    points=points_from_config(p["sweep"]),
    search=Search.from_config(p["sweep"]),
    server_args=p["server_args"],
    options=p["options"],
    env={**software.get("env", {}), **p["env"]},  # a built wheel's PYTHONPATH, then the config's
    secret_env=[p["api_key_env"]] if p["api_key_env"] else [],
    # the workflow's llama.cpp build, or the prebuilt binaries the config names (`bin_dir:`)
    bin_dir=str(Path(inp.software).parent)
    if software.get("kind") == "cmake"
    else p["options"].get("bin_dir"),
    # the environment the workflow built, or the interpreter the config brings (`python:`)
    python=software.get("python") or p["options"].get("python"),
    server_log=snakemake.log.server,
    readiness_timeout=p["readiness_timeout"],
    warmups=p["sweep"]["warmups"],
    seed=p["workload"]["seed"],
    endpoint=p["workload"]["endpoint"],
    base_url=p["base_url"],
    api_key_env=p["api_key_env"],
    bench_args=sweep_bench_args(p["sweep"]),
    metadata={
        "model": w.model,
        "model_source": model_source.get("source"),
        "model_sha": model_sha(model_source),
        "engine_commit": engine_commit,
        "source_commit": source_commit,
        "software_id": p["software_id"],
        "workload": p["workload"]["name"],
    },
)
out = snakemake.output
attic = Path(out.server).parent / "failed"
try:
    with logged(snakemake.log.sweep):
        status = run_sweep(cfg)
except BaseException:  # interrupted (Ctrl-C, SIGTERM): keep what was measured, redo next run
    set_aside([out.points, out.server], attic)
    raise
if status != 0:
    # the server's own error (with the tail of its log) goes into Snakemake's error message
    server = Path(out.server)
    error = read_json(server).get("error") if server.is_file() else None
    kept = set_aside([out.points, out.server], attic)
    where = f"completed points kept in {kept}; see {snakemake.log.sweep} and {snakemake.log.server}"
    what = error or "a sweep point failed"
    sys.exit(f"serve_sweep {w.engine}/{w.model}/{w.quant}/{w.sweep} failed: {what}; {where}")
