"""Fidelity on the real llama-server: f16 close to the reference, Q4_K_M further, and a GGUF
with one tensor scaled (a broken conversion) far off."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from enginebench import sweep
from enginebench.fidelity.score import score_file
from enginebench.runspec import RunSpec

pytestmark = pytest.mark.engines

PROMPTS, TOKENS = 8, 16


def _scaled_copy(src: Path, dest: Path, tensor: str, llama_cpp_src: Path) -> None:
    """`src` with every weight of `tensor` multiplied by 4, in place in a copy (gguf-py's
    reader memory-maps the tensors)."""
    shutil.copyfile(src, dest)
    sys.path.insert(0, str(llama_cpp_src / "gguf-py"))
    try:
        from gguf import GGUFReader
    finally:
        sys.path.pop(0)
    reader = GGUFReader(dest, "r+")
    (t,) = (t for t in reader.tensors if t.name == tensor)
    t.data[...] = t.data * 4
    t.data.flush()  # type: ignore[union-attr]


def _fidelity(
    gguf: Path, name: str, bin_dir: Path, model_dir: Path, prompts: Path, tmp: Path
) -> dict[str, Any]:
    out = tmp / name
    cfg = RunSpec(
        engine="llamacpp", model=str(gguf), out_dir=str(out), prompts_file=str(prompts),
        tokenizer=str(model_dir), server_args=("-np", "1", "-c", "1024"), bin_dir=str(bin_dir),
        served_name="tiny", quant=name, sweep="fidelity",
        fidelity={"num_prompts": PROMPTS, "max_tokens": TOKENS, "top_logprobs": 10,
                  "out": str(out / "engine.jsonl")},
    )  # fmt: skip
    assert sweep.run_sweep(cfg) == 0
    return score_file(
        str(out / "engine.jsonl"), str(out / "server.json"), str(model_dir),
        str(out / "score.json"), TOKENS,
    )  # fmt: skip


def test_f16_is_close_q4_further_and_a_scaled_tensor_far(
    llama_server_bin: Path, tiny_gguf: Path, tiny_gguf_q4: Path, tiny_model_dir: Path,
    llama_cpp_src: Path, tmp_path: Path,
) -> None:  # fmt: skip
    from enginebench.loadgen.datasets import materialize_dataset

    prompts = tmp_path / "p.jsonl"
    materialize_dataset(prompts, "random", PROMPTS, tiny_model_dir, input_len=64, output_len=4)
    broken = tmp_path / "broken.gguf"
    _scaled_copy(tiny_gguf, broken, "blk.1.ffn_down.weight", llama_cpp_src)
    bin_dir, args = llama_server_bin.parent, (tiny_model_dir, prompts, tmp_path)
    f16 = _fidelity(tiny_gguf, "f16", bin_dir, *args)
    q4 = _fidelity(tiny_gguf_q4, "Q4_K_M", bin_dir, *args)
    bad = _fidelity(broken, "broken", bin_dir, *args)
    for s in (f16, q4, bad):
        assert s["failed"] == 0 and s["scored_by_ids"] == PROMPTS and s["top_k"] == 10
    assert f16["top1_agreement"] > 0.85 and f16["kl_mean"] < 1e-4
    assert q4["kl_mean"] > 2 * f16["kl_mean"]
    assert q4["logprob_err_mean"] > 2 * f16["logprob_err_mean"]
    assert bad["kl_mean"] > 10 * f16["kl_mean"] and bad["top1_agreement"] < f16["top1_agreement"]
    assert bad["exact_match_tokens"] < f16["exact_match_tokens"]
