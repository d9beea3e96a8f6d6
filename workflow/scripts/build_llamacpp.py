"""Build llama-server and llama-quantize with CMake (ccache makes rebuilds cheap)."""

from pathlib import Path

from enginebench.engines.build import build_llamacpp
from enginebench.scriptio import logged, read_json, write_json

p = snakemake.params
with logged(snakemake.log[0]):
    info = build_llamacpp(
        Path(snakemake.input.src),
        Path(snakemake.output.build).parent.parent,
        backend=p.backend,
        extra_cmake_flags=tuple(p.cmake_flags),
        cuda_architectures=p.cuda_architectures,
        jobs=snakemake.threads,
    )
    source = Path(snakemake.input.src) / "enginebench-source.json"
    info["source"] = read_json(source) if source.is_file() else None
    write_json(snakemake.output.build, {"kind": "cmake", **info})
