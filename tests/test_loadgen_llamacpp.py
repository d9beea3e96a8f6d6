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
    assert summary["total_input_tokens"] == NUM_PROMPTS * 128
    assert summary["total_output_tokens"] == NUM_PROMPTS * 128
    for key in ("mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_itl_ms", "median_e2el_ms"):
        assert summary[key] > 0, key
    assert 0 < summary["request_throughput"] <= 5
    assert summary["max_concurrent_requests"] >= 1

    assert len(rows) == NUM_PROMPTS
    for r in rows:
        assert r["status"] == "ok", r["error"]
        # exactly 128 tokens by the server's count, which is the one the metrics use
        assert r["server_completion_tokens"] == 128 == r["output_len"] == r["expected_output_len"]
        assert r["prompt_len"] == 128
        # llama.cpp adds BOS; its tokenizer agrees with the HF one on the prompt
        assert r["server_prompt_tokens"] in (128, 129)
        assert len(r["itl_s"]) >= 1 and r["ttft_s"] < r["e2el_s"]
