"""llama.cpp's `llama-bench` (built beside llama-server by `engines/build.py`): decode-only runs.

Flags and JSON fields follow tools/llama-bench/llama-bench.cpp (print_usage, parse_cmd_params,
test::get_fields, json_printer). `-p 0` drops the prompt test, so each depth gives one `tgN`
test; with `-d D` the D-token context is filled before timing and not counted in tok/s.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Fields every llama-bench JSON test object has (n_depth only since --n-depth exists).
REQUIRED_FIELDS = ("n_prompt", "n_gen", "avg_ts", "stddev_ts")


def llama_bench_argv(
    bin_dir: str | os.PathLike[str],
    gguf: str | os.PathLike[str],
    *,
    n_gen: int = 128,
    depth: int | Sequence[int] = 0,
    threads: int | None = None,
    n_gpu_layers: int | None = None,
    repetitions: int = 5,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """argv for one llama-bench run: tg{n_gen} at each depth, `repetitions` times, JSON on stdout.

    threads / n_gpu_layers unset leave llama-bench's defaults (all math cores; -ngl -1 = all
    layers on the GPU when there is one).
    """
    depths = [depth] if isinstance(depth, int) else list(depth)
    if not depths or any(d < 0 for d in depths):
        raise ValueError(f"depth must be one or more integers >= 0, got {depth!r}")
    if n_gen <= 0 or repetitions <= 0:
        raise ValueError("n_gen and repetitions must be positive")
    if "," in str(gguf):  # llama-bench splits -m on commas (several models per run)
        raise ValueError(f"{gguf}: llama-bench cannot take a model path with a comma")
    argv = [
        str(Path(bin_dir) / "llama-bench"),
        "-m", str(gguf),
        "-p", "0",
        "-n", str(n_gen),
        "-d", ",".join(str(d) for d in depths),
        "-r", str(repetitions),
        "-o", "json",
    ]  # fmt: skip
    if threads is not None:
        argv += ["-t", str(threads)]
    if n_gpu_layers is not None:
        argv += ["-ngl", str(n_gpu_layers)]
    return [*argv, *extra_args]


def bench_test_name(n_prompt: int, n_gen: int, n_depth: int = 0) -> str:
    """llama-bench's own test label (markdown_printer): pp512, tg128, pp512+tg128, "@ d512"."""
    if n_prompt > 0 and n_gen == 0:
        name = f"pp{n_prompt}"
    elif n_gen > 0 and n_prompt == 0:
        name = f"tg{n_gen}"
    else:
        name = f"pp{n_prompt}+tg{n_gen}"
    return f"{name} @ d{n_depth}" if n_depth > 0 else name


def parse_llama_bench_json(text: str) -> list[dict[str, Any]]:
    """Rows from `llama-bench -o json` stdout (a JSON array of test objects), one per test."""
    if not text.strip():
        raise ValueError("llama-bench JSON: empty output")
    try:
        tests = json.loads(text)
    except json.JSONDecodeError as e:
        # llama-bench prints a non-finite avg_ts as `nan`/`inf`, which is not JSON either
        raise ValueError(f"llama-bench JSON: not valid JSON ({e})") from None
    if not isinstance(tests, list):
        raise ValueError(
            f"llama-bench JSON: expected an array of tests, got {type(tests).__name__}"
        )
    return [_row(i, t) for i, t in enumerate(tests)]


def _row(i: int, t: Any) -> dict[str, Any]:
    if not isinstance(t, dict):
        raise ValueError(f"llama-bench JSON: test {i} is a {type(t).__name__}, not an object")
    missing = [f for f in REQUIRED_FIELDS if f not in t]
    if missing:
        raise ValueError(f"llama-bench JSON: test {i} lacks {', '.join(missing)}")
    ints = {f: t.get(f, 0) for f in ("n_prompt", "n_gen", "n_depth")}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints.values()):
        raise ValueError(f"llama-bench JSON: test {i}: n_prompt/n_gen/n_depth not counts: {ints}")
    tok_s, stddev = t["avg_ts"], t["stddev_ts"]
    for name, v in (("avg_ts", tok_s), ("stddev_ts", stddev)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"llama-bench JSON: test {i}: {name} is not a number: {v!r}")
    return {
        "test": bench_test_name(ints["n_prompt"], ints["n_gen"], ints["n_depth"]),
        **ints,
        "tok_s": float(tok_s),
        "tok_s_stddev": float(stddev),
        "samples_ts": t.get("samples_ts"),
        "build_commit": t.get("build_commit"),
        "build_number": t.get("build_number"),
        "model_type": t.get("model_type"),
        "model_size_bytes": t.get("model_size"),  # llama_model_size: tensor bytes, not file size
        "model_n_params": t.get("model_n_params"),
        "backends": t.get("backends"),
        "n_threads": t.get("n_threads"),
        "n_gpu_layers": t.get("n_gpu_layers"),
        "type_k": t.get("type_k"),
        "type_v": t.get("type_v"),
        "flash_attn": t.get("flash_attn"),
    }
