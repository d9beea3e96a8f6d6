"""The memory bandwidth decode results are held against: the CPU's, measured (a short numpy
copy); the GPU's, from the datasheet table by its nvidia-smi name; the config's, if given."""

import json
from pathlib import Path

from enginebench.provenance import collect_gpu
from enginebench.roofline import gpu_bandwidth, measure_cpu_bandwidth
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    cpu = measure_cpu_bandwidth()
    print(f"CPU: {cpu.bytes_per_s / 1e9:.1f} GB/s ({cpu.source})")
    record = {"cpu": {"bytes_per_s": cpu.bytes_per_s, "source": cpu.source,
                      "samples": list(cpu.samples_bytes_per_s)}}  # fmt: skip
    devices = (collect_gpu() or {}).get("devices") or []
    names = [str(d.get("name")) for d in devices if d.get("name")]
    gpu = gpu_bandwidth(names[0]) if names else None
    record["gpu"] = (
        {"name": names[0], "bytes_per_s": gpu.bytes_per_s, "source": gpu.source} if gpu else None
    )
    if names and gpu is None:
        print(f"GPU {names[0]!r} is not in the datasheet table: set roofline.bandwidth_gb_s")
    given = snakemake.params.bandwidth_gb_s
    record["config"] = (
        {"bytes_per_s": float(given) * 1e9, "source": "config: roofline.bandwidth_gb_s"}
        if given
        else None
    )
    Path(snakemake.output[0]).write_text(json.dumps(record, indent=1) + "\n")
