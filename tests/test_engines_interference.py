"""Host interference on a real llama-server (CPU): a point run while CPU hogs load the machine is
flagged `disturbed`; the same point on a quiet machine is not. The hogs are started outside the
sweep's process trees (by a shell that exits), as another user's job would be."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from enginebench.points import SweepPoint
from enginebench.runspec import RunSpec
from enginebench.sweep import run_sweep
from tests.test_loadgen_support import save_random_prompts

pytestmark = pytest.mark.engines


def _point(tag: str, server_bin: Path, gguf: Path, hf: Path, tmp_path: Path) -> dict:
    prompts = save_random_prompts(tmp_path / f"{tag}.jsonl", hf, 24, 32, 32)
    cfg = RunSpec(
        engine="llamacpp",
        model=str(gguf),
        served_name="tiny-llama",
        quant="F16",
        out_dir=str(tmp_path / tag),
        tokenizer=str(hf),
        prompts_file=str(prompts),
        points=(SweepPoint("rate", 4.0, 24),),
        options={"parallel": 4, "ctx_size": 2048},
        bin_dir=str(server_bin.parent),
    )
    assert run_sweep(cfg) == 0, (tmp_path / tag / "server.log").read_text()[-3000:]
    return json.loads((tmp_path / tag / "rate-4.json").read_text())


def test_a_cpu_hog_during_a_point_flags_it_disturbed(
    llama_server_bin: Path, tiny_gguf: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    quiet = _point("quiet", llama_server_bin, tiny_gguf, tiny_model_dir, tmp_path)
    shell = f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!"
    hogs = [
        int(subprocess.run(["sh", "-c", shell], capture_output=True, text=True).stdout)
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        busy = _point("busy", llama_server_bin, tiny_gguf, tiny_model_dir, tmp_path)
    finally:
        for pid in hogs:
            os.kill(pid, signal.SIGKILL)
    assert "disturbed" not in quiet["validity"], quiet["host_others_cpu_share"]
    assert quiet["host_server_cpu_share"] > 0 and quiet["host_server_pids"]
    assert "disturbed" in busy["validity"]
    assert busy["host_others_cpu_share"] > 0.10 > quiet["host_others_cpu_share"]
