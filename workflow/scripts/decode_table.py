"""The single-stream decode table with llama-bench and the memory-bandwidth roofline."""

import json
from pathlib import Path

from enginebench.report.decode import decode_frame, write_decode
from enginebench.scriptio import logged

inp, out, p = snakemake.input, snakemake.output, snakemake.params
with logged(snakemake.log[0]):
    frame = decode_frame(
        inp.results, p.sweeps, list(inp.llama_bench), json.loads(Path(inp.bandwidth).read_text()),
        {m: Path(d) / "config.json" for m, d in zip(p.models, inp.hf, strict=True)}, p.uses_gpu,
        list(inp.fidelity),
    )  # fmt: skip
    write_decode(frame, out.csv, out.md, out.html)
