"""The decode table: decode tok/s from the single-stream point, llama-bench beside it, and the
roofline arithmetic on known sizes and bandwidths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enginebench.report.decode import BOUND_BELOW, decode_frame, pivot, write_decode
from enginebench.report.tidy import load_runs, write_results
from tests.fixtures.synthetic import write_synthetic_results

CONFIG = {
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "hidden_size": 512,
}  # fmt: skip  (head dim 64)


def _setup(tmp_path: Path) -> dict:
    written = write_synthetic_results(
        tmp_path / "r", engines=("llamacpp", "vllm"), points=("conc-1",), sweep_name="decode"
    )
    gguf = tmp_path / "q.gguf"
    gguf.write_bytes(b"\0" * 1_000_000)  # 1 MB of weights
    for (engine, _, _), paths in written.items():
        s = json.loads(paths[0].read_text())
        s |= {"p50_tpot_ms": 4.0, "completed": 8, "total_input_tokens": 8 * 20,
              "total_output_tokens": 8 * 128}  # fmt: skip
        s["provenance"]["model_path"] = str(gguf)
        if engine == "llamacpp":
            s["median_engine_decode_ms_per_token"] = 3.9
        paths[0].write_text(json.dumps(s))
    runs = [(paths, paths[0].parent.parent / "server.json") for paths in written.values()]
    write_results(load_runs(runs), tmp_path / "t.csv", tmp_path / "t.parquet")
    bench = tmp_path / "llama-bench.json"
    bench.write_text(json.dumps({
        "engine": "llamacpp", "model": "tiny", "quant": "q8_0", "depth": 20,
        "rows": [{"n_prompt": 0, "n_gen": 128, "n_depth": 0, "tok_s": 300.0},
                 {"n_prompt": 0, "n_gen": 128, "n_depth": 20, "tok_s": 290.0}],
    }))  # fmt: skip
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    bandwidth = {"cpu": {"bytes_per_s": 10e9, "source": "measured: test"}, "gpu": None}
    return {
        "results": tmp_path / "t.parquet", "sweeps": ["decode"], "llama_bench": [bench],
        "bandwidth": bandwidth, "model_configs": {"tiny": config}, "uses_gpu": {},
    }  # fmt: skip


def test_decode_and_roofline_arithmetic(tmp_path: Path) -> None:
    frame = decode_frame(**_setup(tmp_path))
    llama = frame[frame["engine"] == "llamacpp"].iloc[0]
    assert llama["decode_tok_s"] == pytest.approx(250.0)  # 1000 / 4 ms
    assert llama["engine_decode_tok_s"] == pytest.approx(1000 / 3.9)
    assert llama["llama_bench_tok_s"] == 300.0 and llama["llama_bench_depth_tok_s"] == 290.0
    # context = 20 prompt tokens + 128 / 2; KV = 2 x 4 layers x 2 heads x 64 x 84 x 2 bytes
    assert llama["context_len"] == pytest.approx(84.0)
    kv = 2 * 4 * 2 * 64 * 84 * 2
    assert llama["kv_mb"] == pytest.approx(kv / 1e6)
    bound = 10e9 / (1_000_000 + kv)
    assert llama["bound_tok_s"] == pytest.approx(bound)
    assert llama["percent_of_bound"] == pytest.approx(250 / bound * 100)
    assert llama["llama_bench_percent_of_bound"] == pytest.approx(300 / bound * 100)
    assert llama["bandwidth_source"] == "measured: test" and llama["bandwidth_gb_s"] == 10.0
    vllm = frame[frame["engine"] == "vllm"].iloc[0]
    assert vllm["llama_bench_tok_s"] != vllm["llama_bench_tok_s"]  # NaN: not llama.cpp


def test_config_bandwidth_wins_and_a_gpu_engine_uses_the_gpu(tmp_path: Path) -> None:
    args = _setup(tmp_path)
    args["bandwidth"] |= {"gpu": {"bytes_per_s": 4.8e12, "source": "datasheet: NVIDIA H200"}}
    frame = decode_frame(**(args | {"uses_gpu": {"vllm": True}}))
    sources = dict(zip(frame["engine"], frame["bandwidth_source"], strict=True))
    assert sources == {"llamacpp": "measured: test", "vllm": "datasheet: NVIDIA H200"}
    args["bandwidth"] |= {"config": {"bytes_per_s": 1e11, "source": "config"}}
    assert set(decode_frame(**args)["bandwidth_source"]) == {"config"}


def test_a_bound_below_a_measurement_is_flagged_not_hidden(tmp_path: Path) -> None:
    """A bandwidth so low that llama-bench (300 tok/s) beats the bound while decode (250) does
    not: the row says so, its percentage stays as measured (over 100), the HTML marks it."""
    args = _setup(tmp_path)
    kv = 2 * 4 * 2 * 64 * 84 * 2
    args["bandwidth"]["cpu"]["bytes_per_s"] = 275 * (1_000_000 + kv)  # bound 275 tok/s
    frame = decode_frame(**args)
    llama = frame[frame["engine"] == "llamacpp"].iloc[0]
    assert llama["roofline_check"] == BOUND_BELOW
    assert llama["llama_bench_percent_of_bound"] == pytest.approx(300 / 275 * 100)
    assert frame[frame["engine"] == "vllm"].iloc[0]["roofline_check"] == "ok"  # 250 < 275
    out = tmp_path / "out"
    write_decode(frame, out / "d.csv", out / "d.md", out / "d.html")
    assert 'class="warn"' in (out / "d.html").read_text()
    assert decode_frame(**_setup(tmp_path))["roofline_check"].tolist() == ["ok", "ok"]


def test_seed_000_shape(tmp_path: Path) -> None:
    frame = decode_frame(**_setup(tmp_path))
    wide, columns = pivot(frame)
    assert len(wide) == 1  # one model on one machine
    headers = [c.header for c in columns]
    assert headers == ["model", "hardware", "llama-bench q8_0 (tok/s)", "llamacpp q8_0 (tok/s)",
                       "vllm q8_0 (tok/s)"]  # fmt: skip
    out = tmp_path / "out"
    write_decode(frame, out / "d.csv", out / "d.md", out / "d.html")
    md = (out / "d.md").read_text()
    assert "250.00" in md and "300.00" in md and "bound = bandwidth / bytes per token" in md
    assert (out / "d.html").read_text().count("<table") == 2
