"""The memory bandwidth decode results are held against: the CPU's, measured (a short numpy
copy); the GPU's, from the datasheet table by its nvidia-smi name; the config's, if given."""

import json
from pathlib import Path

from enginebench.provenance import collect_gpu
from enginebench.roofline import bandwidth_record, measure_cpu_bandwidth
from enginebench.scriptio import logged

with logged(snakemake.log[0]):
    cpu = measure_cpu_bandwidth()
    print(f"CPU: {cpu.bytes_per_s / 1e9:.1f} GB/s ({cpu.source})")
    devices = (collect_gpu() or {}).get("devices") or []
    names = [str(d["name"]) for d in devices if d.get("name")]
    record = bandwidth_record(cpu, names, snakemake.params.bandwidth_gb_s)
    if names and record["gpu"] is None:
        print(f"GPU {names[0]!r} is not in the datasheet table: set roofline.bandwidth_gb_s")
    Path(snakemake.output[0]).write_text(json.dumps(record, indent=1) + "\n")
