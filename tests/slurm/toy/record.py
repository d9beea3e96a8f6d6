"""Write one JSON record of where and how a toy job ran (used by tests/slurm/toy/Snakefile).

    python record.py OUT RULE [INPUT ...]

The record holds the Slurm variables the job saw (SLURM_JOB_ID proves it ran as a Slurm job), the
threads Snakemake gave it, and, for the aggregating rule, the records of its inputs.
"""

import json
import os
import socket
import sys

KEYS = (
    "SLURM_JOB_ID",
    "SLURM_STEP_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_CPUS_PER_TASK",
    "SLURM_MEM_PER_NODE",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
    "CUDA_VISIBLE_DEVICES",
)


def main() -> None:
    out, rule, threads, *inputs = sys.argv[1:]
    record = {
        "rule": rule,
        "output": out,
        "threads": int(threads),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "env": {key: os.environ.get(key) for key in KEYS},
    }
    if inputs:
        record["inputs"] = []
        for path in inputs:
            with open(path) as fh:
                record["inputs"].append(json.load(fh))
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as fh:
        json.dump(record, fh, indent=1)


if __name__ == "__main__":
    main()
