"""The single-stream decode table with llama-bench and the memory-bandwidth roofline."""

from pathlib import Path

from enginebench.jsonfile import read_json
from enginebench.report.decode import decode_frame, write_decode
from enginebench.roofline import best_of
from enginebench.scriptio import logged

inp, out, p = snakemake.input, snakemake.output, snakemake.params
with logged(snakemake.log[0]):
    # measured before and after the sweeps: the higher holds (a busy moment lowers a copy)
    bandwidth = best_of(dict(zip(p.bandwidth_when, map(read_json, inp.bandwidth), strict=True)))
    frame = decode_frame(
        inp.results, p.sweeps, list(inp.llama_bench), bandwidth,
        {m: Path(d) / "config.json" for m, d in zip(p.models, inp.hf, strict=True)}, p.uses_gpu,
        list(inp.fidelity),
    )  # fmt: skip
    write_decode(frame, out.csv, out.md, out.html)
