"""`enginebench bench` against a real llama.cpp `llama-server` serving the tiny GGUF.

Sized to finish well under a minute on 2 CPU cores (the tiny model decodes ~2,000 tok/s
aggregate): 32 random prompts of 128 tokens, 128 output tokens each, 4 req/s Poisson.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from enginebench.loadgen.runner import main

NUM_PROMPTS = 32
ALIAS = "tiny"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def llama_server(llama_server_bin: Path, tiny_gguf: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    argv = [
        str(llama_server_bin),
        "-m",
        str(tiny_gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--alias",
        ALIAS,
        "-np",
        "4",
        "-c",
        "4096",
        "-t",
        "2",
    ]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"llama-server exited with {proc.returncode}: see {tmp_path}/server.log"
                )
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama-server not healthy within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


@pytest.mark.engines
def test_bench_against_llama_server(
    llama_server: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = [
        "--base-url",
        llama_server,
        "--model",
        ALIAS,
        "--tokenizer",
        str(tiny_model_dir),
        "--dataset-name",
        "random",
        "--random-input-len",
        "128",
        "--random-output-len",
        "128",
        "--num-prompts",
        str(NUM_PROMPTS),
        "--request-rate",
        "4",
        "--ignore-eos",
        "--num-warmups",
        "2",
        "--save-result",
        "--result-dir",
        str(out),
        "--result-filename",
        "rate-4.json",
    ]
    assert main(argv) == 0
    summary = json.loads((out / "rate-4.json").read_text())
    rows = [json.loads(line) for line in (out / "rate-4.jsonl").read_text().splitlines()]

    assert summary["completed"] == NUM_PROMPTS and summary["failed"] == 0
    assert summary["model_id"] == ALIAS and summary["request_rate"] == 4
    assert summary["short_outputs"] == 0 and summary["errors_by_kind"] == {}
    # the server's count (vLLM's definition): exactly the asked 128, its BOS included
    assert summary["total_input_tokens"] == NUM_PROMPTS * 128
    assert summary["total_input_tokens_client"] == NUM_PROMPTS * 128
    assert summary["total_output_tokens"] == NUM_PROMPTS * 128
    # the engine's own account: fresh prompts (the warm-ups had their own); llama-server counts
    # the BOS that every prompt starts with as cached, and nothing else
    assert summary["engine_account"] == ["llama.cpp timings"]
    assert summary["engine_reported_requests"] == NUM_PROMPTS
    assert summary["shared_prefix_len"] == 1
    assert summary["engine_cached_prompt_tokens"] <= NUM_PROMPTS
    assert summary["requests_with_unrequested_cache_hits"] == 0
    assert summary["median_engine_decode_ms_per_token"] > 0
    assert summary["tpot_beyond_engine_ms"] is not None
    for key in ("mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_itl_ms", "median_e2el_ms"):
        assert summary[key] > 0, key
    assert 0 < summary["request_throughput"] <= 5
    assert summary["max_concurrent_requests"] >= 1

    assert len(rows) == NUM_PROMPTS
    # A client that reads a stream late gets all of it in one read (TTFT == E2EL, every ITL 0):
    # seen once in CI, a 64 ms response behind a 44 ms dispatch stall. Most streams are paced.
    assert sum(r["ttft_s"] < r["e2el_s"] for r in rows) > NUM_PROMPTS // 2
    for r in rows:
        assert r["status"] == "ok", r["error"]
        # exactly 128 tokens by the server's count, which is the one the metrics use
        assert r["server_completion_tokens"] == 128 == r["output_len"] == r["expected_output_len"]
        # llama.cpp adds the BOS the client counted: the server sees exactly the asked length
        assert r["prompt_len"] == 128 == r["server_prompt_tokens"]
        assert len(r["itl_s"]) >= 1 and r["ttft_s"] <= r["e2el_s"]
        assert r["engine_cached_tokens"] in (0, 1)  # at most the BOS
        assert r["engine_cached_tokens"] + r["engine_prompt_n"] == 128
        assert r["engine_predicted_n"] == 128 and r["engine_decode_ms_per_token"] > 0


@pytest.mark.engines
def test_prefix_groups_expected_and_served(
    llama_server: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Two prefix groups on one server: the workload's expectation per request (its group's
    prefix once an earlier request sent it), and the share of it llama-server says it served."""
    from enginebench.loadgen.datasets import materialize_dataset

    groups = materialize_dataset(
        tmp_path / "groups.jsonl", "random", 16, tiny_model_dir,
        input_len=32, output_len=8, prefix_len=64, prefix_groups=2,
    )  # fmt: skip
    out = tmp_path / "points"
    first = _point(llama_server, groups, tiny_model_dir, out, "rate-8", 0)
    second = _point(llama_server, groups, tiny_model_dir, out, "rate-9", 8)
    for name, summary in (("rate-8", first), ("rate-9", second)):
        rows = [json.loads(x) for x in (out / f"{name}.jsonl").open()]
        expected = [r["expected_cached_len"] for r in rows]
        assert set(expected) <= {0, 65} and summary["expected_cached_prompt_tokens"] == sum(
            expected
        )
        served = summary["expected_prefix_served_fraction"]
        assert served is not None and 0.0 <= served <= 1.0
        assert summary["requests_with_unrequested_cache_hits"] == 0
    # the first point opens both groups (one request each expects nothing); by the second every
    # request expects its group's 65 tokens (BOS + prefix), and its slots hold both prefixes
    assert first["expected_cached_prompt_tokens"] == 6 * 65
    assert second["expected_cached_prompt_tokens"] == 8 * 65
    assert second["expected_prefix_served_fraction"] >= 0.5


def _point(server: str, prompts: Path, tok: Path, out: Path, name: str, offset: int) -> dict:
    """One open-loop point (`name`: rate-<r>) over rows [offset, offset + 8) of `prompts`, its
    summary carrying its point and provenance as a sweep's does; its summary."""
    provenance = out.parent / "provenance.json"
    provenance.write_text(json.dumps({"engine": "llamacpp", "model": ALIAS}))
    argv = ["--base-url", server, "--model", ALIAS, "--tokenizer", str(tok),
            "--prompts-file", str(prompts), "--prompt-offset", str(offset), "--num-prompts", "8",
            "--request-rate", name.removeprefix("rate-"), "--ignore-eos", "--save-result",
            "--result-dir", str(out), "--result-filename", f"{name}.json", "--point", name,
            "--provenance-file", str(provenance)]  # fmt: skip
    assert main(argv) == 0
    return dict(json.loads((out / f"{name}.json").read_text()))


@pytest.mark.engines
def test_prefix_cache_hits_counted_and_told_apart(
    llama_server: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """llama-server's own cache counter, through two sweep-like points on one server: a shared
    prefix the workload asks for is served from cache and labelled as asked for; replaying rows
    the server has seen (what every point after the first did before fresh rows) is flagged."""
    from enginebench.loadgen.datasets import materialize_dataset
    from enginebench.report.tables import write_engine_table

    shared = materialize_dataset(tmp_path / "shared.jsonl", "random", 24, tiny_model_dir,
                                 input_len=32, output_len=16, prefix_len=96)  # fmt: skip
    out = tmp_path / "points"
    first = _point(llama_server, shared, tiny_model_dir, out, "rate-8", 0)
    second = _point(llama_server, shared, tiny_model_dir, out, "rate-9", 8)
    for summary in (first, second):
        assert summary["shared_prefix_len"] == 97  # the prefix and the BOS before it
        assert summary["requests_with_unrequested_cache_hits"] == 0
    # by the second point the prefix is in the cache: a request that lands on a slot which held
    # a prefixed prompt reuses all of it (a slot still empty, or busy, gives no hit)
    cached = [json.loads(x)["engine_cached_tokens"] for x in (out / "rate-9.jsonl").open()]
    assert sum(c >= 96 for c in cached) >= len(cached) // 2, cached
    assert max(cached) <= 97  # never more than what is shared
    # rows the server has already seen: cache hits nobody asked for, and flagged as such
    # another seed: with the same one, its first row would begin with the prefix's 96 random
    # tokens (same generator state), and llama-server would rightly report them as cached
    fresh = materialize_dataset(tmp_path / "fresh.jsonl", "random", 8, tiny_model_dir,
                                input_len=128, output_len=16, seed=1)  # fmt: skip
    _point(llama_server, fresh, tiny_model_dir, out, "rate-1", 0)
    again = _point(llama_server, fresh, tiny_model_dir, out, "rate-2", 0)
    assert again["requests_with_unrequested_cache_hits"] > 0
    assert again["unrequested_cached_prompt_tokens"] > 0
    csv, md, html = (tmp_path / f"table.{ext}" for ext in ("csv", "md", "html"))
    names = ("rate-1", "rate-2", "rate-8", "rate-9")
    write_engine_table([out / f"{n}.json" for n in names], None, csv, md, html)
    frame = pd.read_csv(csv)
    assert list(frame["shared prefix (tokens)"]) == [1, 1, 97, 97]  # the BOS; prefix + BOS
    assert frame["unrequested cache hits"][0] == 0 and frame["unrequested cache hits"][1] > 0
    assert 'class="warn"' in html.read_text()
