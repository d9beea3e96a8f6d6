"""`enginebench bench` end to end against the in-process fake server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from enginebench.loadgen import datasets
from enginebench.loadgen.runner import main
from enginebench.loadgen.tokenizer import Tokenizer
from tests.fixtures.fakeserver import FakeServer, FakeServerConfig, output_length, serve_in_thread

SUMMARY_KEYS = {
    "date",
    "backend",
    "model_id",
    "tokenizer_id",
    "num_prompts",
    "request_rate",
    "burstiness",
    "max_concurrency",
    "duration",
    "completed",
    "failed",
    "total_input_tokens",
    "total_output_tokens",
    "request_throughput",
    "request_goodput",
    "output_throughput",
    "total_token_throughput",
    "max_concurrent_requests",
    "input_throughput",
    "achieved_request_rate",
    "dispatch_lag_ms",
    "short_outputs",
    "token_count_discrepancies",
    "errors_by_kind",
    "concurrency",
    "metadata",
    "argv",
    "enginebench_version",
}
ROW_KEYS = {
    "index",
    "scheduled_s",
    "sent_s",
    "queue_s",
    "ttft_s",
    "ttft_content_s",
    "itl_s",
    "e2el_s",
    "prompt_len",
    "output_len",
    "server_completion_tokens",
    "server_prompt_tokens",
    "client_output_tokens",
    "expected_output_len",
    "status",
    "http_status",
    "error",
    "error_kind",
}


def bench(
    srv: FakeServer, out: Path, *argv: str, model: str = "fake-model"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    full = [
        "--base-url",
        srv.base_url,
        "--model",
        model,
        "--save-result",
        "--result-dir",
        str(out),
        "--result-filename",
        "r.json",
        *argv,
    ]
    assert main(full) == 0
    summary = json.loads((out / "r.json").read_text())
    rows = [json.loads(line) for line in (out / "r.jsonl").read_text().splitlines()]
    return summary, rows


def test_random_dataset_exact_lengths_and_output_format(
    tmp_path: Path, tokenizer_dir: Path
) -> None:
    cfg = FakeServerConfig(tokens=3)  # the fake "EOS" comes early: ignore_eos must override it
    prov_file = tmp_path / "provenance.json"
    prov_file.write_text(json.dumps({"engine": "fake", "started": "sweep", "finished": "sweep"}))
    with serve_in_thread(cfg) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--tokenizer",
            str(tokenizer_dir),
            "--dataset-name",
            "random",
            "--random-input-len",
            "24",
            "--random-output-len",
            "12",
            "--num-prompts",
            "30",
            "--request-rate",
            "300",
            "--num-warmups",
            "3",
            "--ignore-eos",
            "--metadata",
            "engine=fake",
            "point=rate-300",
            "--point",
            "rate-300",
            "--provenance-file",
            str(prov_file),
            "--goodput",
            "ttft:1000",
        )
        bodies = list(srv.stats.bodies)
    assert summary.keys() >= SUMMARY_KEYS
    assert {
        f"{s}_{m}_ms"
        for s in ("mean", "median", "std", "p50", "p90", "p99")
        for m in ("ttft", "tpot", "itl", "e2el", "ttft_content")
    } <= summary.keys()
    assert summary["completed"] == 30 and summary["failed"] == 0
    assert summary["num_prompts"] == 30 and summary["request_rate"] == 300
    # vLLM's total: the server's prompt_tokens (the fake server counts words); ours: the client's
    assert summary["total_input_tokens"] == sum(r["server_prompt_tokens"] for r in rows)
    assert summary["total_input_tokens_client"] == 30 * 24
    assert summary["total_output_tokens"] == 30 * 12
    assert summary["short_outputs"] == 0
    assert summary["metadata"] == {"engine": "fake", "point": "rate-300"}
    # the load generator writes the point and the provenance itself, with its own window
    assert summary["point"] == {"name": "rate-300", "mode": "rate", "load": 300.0, "repeat": 0}
    prov = summary["provenance"]
    assert prov["engine"] == "fake" and prov["started"] < prov["finished"]
    assert summary["request_goodput"] > 0 and summary["argv"][0] == "--base-url"
    assert len(rows) == 30 and sorted(r["index"] for r in rows) == list(range(30))
    assert set(rows[0]) >= ROW_KEYS
    for r in rows:
        assert r["status"] == "ok" and r["output_len"] == r["expected_output_len"] == 12
        assert r["prompt_len"] == 24 and len(r["itl_s"]) == 11
        assert r["server_completion_tokens"] == 12
        assert r["ttft_s"] <= r["e2el_s"]
    # warm-ups reached the server but not the results
    assert len(bodies) == 33
    assert all(b["ignore_eos"] is True and b["max_tokens"] == 12 for b in bodies)
    assert all(b["stream_options"] == {"include_usage": True} for b in bodies)


def test_chat_endpoint_ttft_and_ttft_content(tmp_path: Path) -> None:
    cfg = FakeServerConfig(tokens=4, first_token_delay_s=0.0, token_delay_s=0.03)
    with serve_in_thread(cfg) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--endpoint",
            "/v1/chat/completions",
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "4",
            "--num-prompts",
            "4",
            "--max-concurrency",
            "4",
        )
        body = srv.stats.bodies[0]
    assert summary["backend"] == "openai-chat"
    assert body["messages"][0]["content"] == datasets.FIXED_PROMPT
    assert body["max_completion_tokens"] == body["max_tokens"] == 4
    for r in rows:
        # the role-only chunk comes at once, the first content token one token delay later
        assert r["ttft_content_s"] - r["ttft_s"] >= 0.025
        assert len(r["itl_s"]) == 4  # role chunk + 4 token chunks


def test_min_tokens_and_short_outputs(tmp_path: Path) -> None:
    with serve_in_thread(FakeServerConfig(tokens=3)) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "8",
            "--num-prompts",
            "5",
            "--ignore-eos-style",
            "min_tokens",
        )
        assert srv.stats.bodies[-1]["min_tokens"] == 8 and "ignore_eos" not in srv.stats.bodies[-1]
        assert summary["short_outputs"] == 0 and {r["output_len"] for r in rows} == {8}
        # a server that ignores the request stops at its own EOS: reported, not hidden
        summary, rows = bench(
            srv,
            tmp_path,
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "8",
            "--num-prompts",
            "5",
            "--extra-body",
            '{"ignore_eos": false}',
        )
    assert summary["short_outputs"] == 5 and summary["short_output_indices"] == [0, 1, 2, 3, 4]
    assert {r["output_len"] for r in rows} == {3}


def test_output_counted_by_client_when_no_usage(
    tmp_path: Path, tokenizer_dir: Path, tokenizer: Tokenizer
) -> None:
    cfg = FakeServerConfig(tokens=6, usage="none", token_text=" hello")
    with serve_in_thread(cfg) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--tokenizer",
            str(tokenizer_dir),
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "6",
            "--num-prompts",
            "3",
        )
    expected = len(tokenizer.encode(" hello" * 6, add_special_tokens=False))
    for r in rows:
        assert r["server_completion_tokens"] is None
        assert r["client_output_tokens"] == r["output_len"] == expected
    assert summary["token_count_discrepancies"]["output"]["compared"] == 0


def test_discrepancies_between_server_and_client_counts(
    tmp_path: Path, tokenizer_dir: Path
) -> None:
    with serve_in_thread(FakeServerConfig(tokens=5, usage="in_last")) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--tokenizer",
            str(tokenizer_dir),
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "5",
            "--num-prompts",
            "4",
        )
    out = summary["token_count_discrepancies"]["output"]
    assert out["compared"] == 4
    for r in rows:
        assert r["output_len"] == r["server_completion_tokens"] == 5  # usage wins, as in vLLM
        assert r["client_output_tokens"] is not None
    assert out["differ"] == sum(r["client_output_tokens"] != 5 for r in rows)


def test_max_concurrency_queue_is_not_ttft(tmp_path: Path) -> None:
    cfg = FakeServerConfig(tokens=4, token_delay_s=0.02)
    with serve_in_thread(cfg) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "4",
            "--num-prompts",
            "9",
            "--max-concurrency",
            "3",
        )
    assert summary["max_concurrency"] == 3
    assert summary["max_inflight_observed"] == 3 and summary["max_concurrent_requests"] <= 3
    queued = sorted(r["queue_s"] for r in rows)
    assert queued[-1] >= 0.1  # the last wave waited two request lifetimes
    assert max(r["ttft_s"] for r in rows) < queued[-1]  # ...and that wait is not in TTFT
    for r in rows:
        assert r["sent_s"] >= r["scheduled_s"] + r["queue_s"] - 1e-6


def test_closed_loop(tmp_path: Path) -> None:
    cfg = FakeServerConfig(tokens=3, token_delay_s=0.01)
    with serve_in_thread(cfg) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "3",
            "--num-prompts",
            "12",
            "--concurrency",
            "2",
        )
    assert summary["concurrency"] == 2 and summary["completed"] == 12
    assert summary["max_inflight_observed"] == 2
    # each user sends its next request once the previous one is back
    by_start = sorted(rows, key=lambda r: r["sent_s"])
    for i in range(2, 12):
        ends = sorted(r["sent_s"] + r["e2el_s"] for r in by_start[:i])
        assert by_start[i]["sent_s"] >= ends[i - 2] - 1e-3


def test_duration_bound(tmp_path: Path) -> None:
    with serve_in_thread(FakeServerConfig(tokens=2)) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "2",
            "--num-prompts",
            "1000",
            "--request-rate",
            "40",
            "--burstiness",
            "inf",
            "--duration",
            "0.5",
        )
    # constant gaps of 25 ms from t=25 ms: sends at 25..500 ms
    assert (
        18 <= summary["num_sent"] <= 20 and summary["completed"] == len(rows) == summary["num_sent"]
    )
    assert max(r["scheduled_s"] for r in rows) <= 0.5


def test_no_stream(tmp_path: Path) -> None:
    with serve_in_thread(FakeServerConfig(tokens=4)) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "4",
            "--num-prompts",
            "3",
            "--no-stream",
        )
        assert srv.stats.bodies[-1]["stream"] is False
    assert summary["stream"] is False and summary["completed"] == 3
    assert all(r["ttft_s"] == r["e2el_s"] and r["output_len"] == 4 for r in rows)


def test_prompts_file_replay(tmp_path: Path, tokenizer_dir: Path) -> None:
    prompts_file = tmp_path / "w.jsonl"
    assert (
        main(
            [
                "--dataset-name",
                "sharegpt",
                "--dataset-path",
                "tests/data/sharegpt_small.json",
                "--tokenizer",
                str(tokenizer_dir),
                "--num-prompts",
                "6",
                "--save-prompts",
                str(prompts_file),
            ]
        )
        == 0
    )
    expected = datasets.load_materialized(prompts_file)
    with serve_in_thread(FakeServerConfig(tokens=2000)) as srv:
        summary, rows = bench(
            srv, tmp_path, "--prompts-file", str(prompts_file), "--num-prompts", "6", "--ignore-eos"
        )
        sent = sorted(srv.stats.bodies, key=lambda b: b["prompt"])
    assert sorted(b["prompt"] for b in sent) == sorted(p.prompt for p in expected)
    by_index = {r["index"]: r for r in rows}
    for i, p in enumerate(expected):
        assert by_index[i]["prompt_len"] == p.prompt_len
        assert by_index[i]["output_len"] == by_index[i]["expected_output_len"] == p.output_len
    assert summary["dataset_name"] is None and summary["prompts_file"] == str(prompts_file)


def test_api_key_sent_but_never_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EB_SECRET", "sk-test-123")
    with serve_in_thread() as srv:
        bench(
            srv,
            tmp_path,
            "--dataset-name",
            "fixed",
            "--num-prompts",
            "2",
            "--api-key-env",
            "EB_SECRET",
        )
        assert srv.stats.authorization == "Bearer sk-test-123"
    assert "sk-test-123" not in (tmp_path / "r.json").read_text()
    assert "sk-test-123" not in (tmp_path / "r.jsonl").read_text()


def test_robust_framing_end_to_end(tmp_path: Path) -> None:
    cfg = FakeServerConfig(tokens=5, crlf=True, ping=True, split_writes=True, token_text=" é😀")
    with serve_in_thread(cfg) as srv:
        summary, rows = bench(
            srv,
            tmp_path,
            "--dataset-name",
            "fixed",
            "--fixed-output-len",
            "5",
            "--num-prompts",
            "3",
            "--endpoint",
            "/v1/chat/completions",
        )
    assert summary["completed"] == 3 and {r["output_len"] for r in rows} == {5}


def test_model_defaults_to_the_servers_first(tmp_path: Path) -> None:
    with serve_in_thread() as srv:
        argv = [
            "--base-url",
            srv.base_url,
            "--dataset-name",
            "fixed",
            "--num-prompts",
            "2",
            "--save-result",
            "--result-dir",
            str(tmp_path),
            "--result-filename",
            "r.json",
        ]
        assert main(argv) == 0
    assert json.loads((tmp_path / "r.json").read_text())["model_id"] == "fake-model"


def test_fake_server_output_length_semantics() -> None:
    assert output_length({"max_tokens": 10}, natural=4, chat=False) == 4
    assert output_length({"max_tokens": 3}, natural=4, chat=False) == 3
    assert output_length({"max_tokens": 10, "ignore_eos": True}, 4, False) == 10
    assert output_length({"max_tokens": 10, "min_tokens": 7}, 4, False) == 7
    gen = {"max_tokens": 10, "generation_config": '{"min_new_tokens": 9}'}
    assert output_length(gen, 4, False) == 9
    assert output_length({"max_completion_tokens": 6, "ignore_eos": True}, 4, True) == 6


def test_fake_server_command_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.fakeserver", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split("listening on", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/health", timeout=10) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        with urllib.request.urlopen(url + "/v1/models", timeout=10) as r:
            assert json.loads(r.read())["data"][0]["id"] == "fake-model"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
