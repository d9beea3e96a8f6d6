"""llama-bench argv and `-o json` parsing (no engine runs; the sample follows llama-bench.cpp's
test::get_fields and json_printer, tools/llama-bench/ of the vendored llama.cpp)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from enginebench.engines.llamabench import (
    bench_test_name,
    llama_bench_argv,
    parse_llama_bench_json,
)


def _test(n_depth: int, samples_ns: list[int], n_gen: int = 128) -> str:
    ts = [1e9 * n_gen / t for t in samples_ns]
    avg = sum(ts) / len(ts)
    sd = (sum((x - avg) ** 2 for x in ts) / (len(ts) - 1)) ** 0.5
    avg_ns = sum(samples_ns) // len(samples_ns)
    return f"""  {{
    "build_commit": "0c1e5709",
    "build_number": 6710,
    "cpu_info": "AMD EPYC 9654 96-Core Processor",
    "gpu_info": "NVIDIA H200",
    "backends": "CUDA",
    "model_filename": "/m/Llama-3.1-8B-Instruct/Q4_K_M.gguf",
    "model_type": "llama 8B Q4_K - Medium",
    "model_size": 4912898304,
    "model_n_params": 8030261248,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 16,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": -1,
    "n_cpu_moe": 0,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": -1,
    "devices": "auto",
    "tensor_split": "0.00",
    "tensor_buft_overrides": "none",
    "load_mode": "auto",
    "lazy_mode": "auto",
    "embeddings": false,
    "no_op_offload": 0,
    "no_host": false,
    "repack": true,
    "fit_target": 0,
    "fit_min_ctx": 0,
    "n_prompt": 0,
    "n_gen": {n_gen},
    "n_depth": {n_depth},
    "test_time": "2026-10-02T09:14:03Z",
    "avg_ns": {avg_ns},
    "stddev_ns": 1234567,
    "avg_ts": {avg:.6f},
    "stddev_ts": {sd:.6f},
    "samples_ns": [ {", ".join(map(str, samples_ns))} ],
    "samples_ts": [ {", ".join(f"{x:.6g}" for x in ts)} ]
  }}"""


SAMPLE = "[\n" + ",\n".join([
    _test(0, [467000000, 468500000, 466200000, 467900000, 469100000]),
    _test(512, [481000000, 482300000, 480100000, 483000000, 481700000]),
]) + "\n]\n"  # fmt: skip


def test_argv_defaults_and_options() -> None:
    assert llama_bench_argv("/b", "/m/q4.gguf") == [
        "/b/llama-bench", "-m", "/m/q4.gguf", "-p", "0", "-n", "128", "-d", "0",
        "-r", "5", "-o", "json",
    ]  # fmt: skip
    argv = llama_bench_argv(
        Path("/b"), Path("/m/q4.gguf"), n_gen=64, depth=[0, 512, 4096], threads=8,
        n_gpu_layers=99, repetitions=3, extra_args=["-fa", "1"],
    )  # fmt: skip
    assert argv == [
        "/b/llama-bench", "-m", "/m/q4.gguf", "-p", "0", "-n", "64", "-d", "0,512,4096",
        "-r", "3", "-o", "json", "-t", "8", "-ngl", "99", "-fa", "1",
    ]  # fmt: skip
    assert llama_bench_argv("/b", "m.gguf", depth=(512,))[7:9] == ["-d", "512"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": []}, "depth must be"),
        ({"depth": [0, -1]}, "depth must be"),
        ({"n_gen": 0}, "n_gen and repetitions"),
        ({"repetitions": 0}, "n_gen and repetitions"),
    ],
)
def test_argv_refuses_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        llama_bench_argv("/b", "m.gguf", **kwargs)


def test_argv_refuses_comma_in_model_path() -> None:
    with pytest.raises(ValueError, match="comma"):
        llama_bench_argv("/b", "/m/a,b.gguf")


def test_test_names_match_llama_bench() -> None:
    assert bench_test_name(0, 128) == "tg128"
    assert bench_test_name(0, 128, 512) == "tg128 @ d512"
    assert bench_test_name(512, 0) == "pp512"
    assert bench_test_name(512, 128) == "pp512+tg128"


def test_parse_realistic_sample() -> None:
    rows = parse_llama_bench_json(SAMPLE)
    assert [r["test"] for r in rows] == ["tg128", "tg128 @ d512"]
    first, deep = rows
    assert first["n_gen"] == 128 and first["n_prompt"] == 0 and first["n_depth"] == 0
    assert first["tok_s"] == pytest.approx(273.8, abs=0.2)  # 128 tokens in ~0.4675 s
    assert 0 < first["tok_s_stddev"] < 1
    assert deep["n_depth"] == 512 and deep["tok_s"] < first["tok_s"]
    assert first["build_commit"] == "0c1e5709" and first["build_number"] == 6710
    assert first["model_size_bytes"] == 4912898304 and first["model_n_params"] == 8030261248
    assert first["backends"] == "CUDA" and first["n_threads"] == 16
    assert first["n_gpu_layers"] == -1 and first["type_k"] == first["type_v"] == "f16"
    assert len(first["samples_ts"]) == 5
    assert isinstance(first["tok_s"], float)


def test_parse_without_n_depth_and_optional_fields() -> None:
    """Older llama-bench (before --n-depth) and minimal objects still parse."""
    rows = parse_llama_bench_json('[{"n_prompt": 0, "n_gen": 16, "avg_ts": 10, "stddev_ts": 0}]')
    assert rows[0]["test"] == "tg16" and rows[0]["n_depth"] == 0 and rows[0]["tok_s"] == 10.0
    assert rows[0]["build_commit"] is None
    assert parse_llama_bench_json("[]") == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty output"),
        ("  \n", "empty output"),
        ('[\n  {\n    "n_prompt": 0,', "not valid JSON"),
        ('[{"n_prompt": 0, "n_gen": 1, "avg_ts": nan, "stddev_ts": 0}]', "not valid JSON"),
        ('{"n_gen": 1}', "expected an array of tests, got dict"),
        ("[1]", "test 0 is a int, not an object"),
        ('[{"n_prompt": 0, "n_gen": 1}]', "test 0 lacks avg_ts, stddev_ts"),
        ('[{"n_prompt": 0, "n_gen": "1", "avg_ts": 1, "stddev_ts": 0}]', "not counts"),
        (
            '[{"n_prompt": 0, "n_gen": 1, "avg_ts": "fast", "stddev_ts": 0}]',
            "avg_ts is not a number",
        ),
        ('[{"n_prompt": 0, "n_gen": 1, "avg_ts": NaN, "stddev_ts": 0}]', "avg_ts is not a number"),
    ],
)
def test_parse_refuses_malformed(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as e:
        parse_llama_bench_json(text)
    assert "\n" not in str(e.value)  # one line


def test_sample_is_what_json_printer_writes() -> None:
    # every field of test::get_fields, in order, then samples_ns and samples_ts
    keys = list(json.loads(SAMPLE)[0])
    assert keys[:5] == ["build_commit", "build_number", "cpu_info", "gpu_info", "backends"]
    assert keys[-6:] == ["avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts"]


def test_sample_fields_match_vendored_source(repo_root: Path) -> None:
    srcs = sorted(
        repo_root.glob("resources/engines/llamacpp/src-*/tools/llama-bench/llama-bench.cpp")
    )
    if not srcs:
        pytest.skip("no llama.cpp source under resources/engines/llamacpp/")
    text = srcs[-1].read_text()
    block = text[text.index("get_fields() {") :]
    block = block[block.index("{", block.index("fields =")) : block.index("};")]
    fields = re.findall(r'"(\w+)"', block)
    assert list(json.loads(SAMPLE)[0])[: len(fields)] == fields
    assert '\\"samples_ns\\": [' in text and '\\"samples_ts\\": [' in text  # C escapes


def test_built_binary_knows_the_flags(repo_root: Path) -> None:
    bins = sorted(repo_root.glob("resources/engines/llamacpp/*/bin/llama-bench"))
    if not bins:
        pytest.skip("no built llama-bench under resources/engines/llamacpp/*/bin (needs a rebuild)")
    import subprocess

    out = subprocess.run(
        [str(bins[0]), "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    for flag in ("-p, --n-prompt", "-n, --n-gen", "-d, --n-depth", "-r, --repetitions",
                 "-o, --output", "-t, --threads", "-ngl, --n-gpu-layers"):  # fmt: skip
        assert flag in out
