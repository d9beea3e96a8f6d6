"""Multi-turn sessions (`--dataset-name sessions`): each turn's prompt is the session's history
(earlier messages and the engine's own answers) then a new message; per-turn records and
metrics; what the engine served of the history it was sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from enginebench.loadgen import datasets
from enginebench.loadgen.errors import BenchError
from enginebench.loadgen.runner import main
from enginebench.loadgen.tokenizer import Tokenizer
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread

ANSWER = " tok" * 4  # the fake server's 4-token answer


def _run(
    tmp_path: Path, tokenizer_dir: Path, cfg: FakeServerConfig, *extra: str
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], int]:
    with serve_in_thread(cfg) as srv:
        argv = [
            "--base-url", srv.base_url, "--model", "fake-model", "--tokenizer", str(tokenizer_dir),
            "--dataset-name", "sessions", "--session-turns", "3", "--num-prompts", "6",
            "--random-input-len", "12", "--random-output-len", "4", "--concurrency", "2",
            "--save-result", "--result-dir", str(tmp_path), "--result-filename", "s.json",
            *extra,
        ]  # fmt: skip
        code = main(argv)
        bodies = list(srv.stats.bodies)
    summary = json.loads((tmp_path / "s.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    return summary, sorted(rows, key=lambda r: r["index"]), bodies, code


def test_sessions_are_whole_and_checked(tokenizer: Tokenizer) -> None:
    prompts = datasets.session_prompts(tokenizer, 2, 3, 12, 4, seed=1)
    assert [(p.session, p.turn) for p in prompts] == [(s, t) for s in (0, 1) for t in (0, 1, 2)]
    assert datasets.sessions_of(prompts) == [[0, 1, 2], [3, 4, 5]]
    assert datasets.sessions_of(datasets.random_prompts(tokenizer, 3, 12, 4)) == []
    with pytest.raises(BenchError, match="prompt 0 is turn 1 of session 0, not turn 0"):
        datasets.sessions_of(prompts[1:])
    with pytest.raises(BenchError, match="prompt 3 is turn 2 of session 1, not turn 1"):
        datasets.sessions_of([prompts[0], prompts[1], prompts[3], prompts[5]])


def test_each_turn_is_sent_its_history_and_the_answers(
    tmp_path: Path, tokenizer_dir: Path, tokenizer: Tokenizer
) -> None:
    summary, rows, bodies, code = _run(tmp_path, tokenizer_dir, FakeServerConfig(tokens=4))
    assert code == 0 and summary["completed"] == 6 and summary["failed"] == 0
    assert [(r["session"], r["turn"]) for r in rows] == [(s, t) for s in (0, 1) for t in (1, 2, 3)]
    messages = [p.prompt for p in datasets.session_prompts(tokenizer, 2, 3, 12, 4)]
    sent = {b["prompt"] for b in bodies}
    for s in (0, 1):
        m = messages[3 * s : 3 * s + 3]
        assert m[0] in sent
        assert m[0] + ANSWER + m[1] in sent
        assert m[0] + ANSWER + m[1] + ANSWER + m[2] in sent
    for r in rows:  # the previous prompt is what every engine has cached
        if r["turn"] == 1:
            assert r["expected_cached_len"] == 0
        else:
            prev = next(
                x for x in rows if (x["session"], x["turn"]) == (r["session"], r["turn"] - 1)
            )
            assert prev["prompt_len"] - 2 <= r["expected_cached_len"] <= prev["prompt_len"]
            assert r["shared_prefix_len"] >= r["expected_cached_len"]
            assert r["prompt_len"] > prev["prompt_len"] + 8
    turns = summary["turns"]
    assert [t["turn"] for t in turns] == [1, 2, 3] and summary["session_turns"] == 3
    assert [t["requests"] for t in turns] == [2, 2, 2]
    assert (
        turns[0]["mean_prompt_tokens"]
        < turns[1]["mean_prompt_tokens"]
        < turns[2]["mean_prompt_tokens"]
    )
    assert summary["p50_ttft_first_turn_ms"] == turns[0]["p50_ttft_ms"] > 0
    assert summary["p50_ttft_last_turn_ms"] == turns[2]["p50_ttft_ms"]
    assert summary["expected_cached_prompt_tokens"] > 0  # the fake server caches nothing


def test_a_chat_session_sends_the_messages(tmp_path: Path, tokenizer_dir: Path) -> None:
    summary, rows, bodies, code = _run(
        tmp_path, tokenizer_dir, FakeServerConfig(tokens=4), "--endpoint", "/v1/chat/completions"
    )
    assert code == 0 and summary["completed"] == 6
    roles = sorted(([m["role"] for m in b["messages"]] for b in bodies), key=len)
    assert roles[-1] == ["user", "assistant", "user", "assistant", "user"]
    last = max(bodies, key=lambda b: len(b["messages"]))
    assert last["messages"][1]["content"] == ANSWER
    third = [r for r in rows if r["turn"] == 3]
    # the server's count of the previous prompt is what it has cached
    assert all(r["expected_cached_len"] and r["expected_cached_len"] > 0 for r in third)
    # and its answer, which the engine generated into its cache (the server's count: 4 tokens)
    assert all(r["shared_prefix_len"] == r["expected_cached_len"] + 4 for r in third)


def test_a_failed_turn_ends_its_session(tmp_path: Path, tokenizer_dir: Path) -> None:
    summary, rows, _, code = _run(
        tmp_path, tokenizer_dir, FakeServerConfig(tokens=4, fail_fraction=0.5),
        "--concurrency", "1", "--max-failed-fraction", "1",
    )  # fmt: skip
    # one user: turn 1 of session 0 answered, turn 2 failed, turn 3 never sent; then session 1
    assert code == 0
    assert (summary["completed"], summary["failed"], summary["cancelled"]) == (2, 2, 2)
    assert [(r["turn"], r["status"]) for r in rows] == [(1, "ok"), (2, "failed")] * 2


def test_think_time_and_closed_loop_only(tmp_path: Path, tokenizer_dir: Path) -> None:
    _, rows, _, code = _run(
        tmp_path, tokenizer_dir, FakeServerConfig(tokens=4), "--think-time", "0.2"
    )
    assert code == 0
    for r in rows:
        if r["turn"] > 1:
            prev = next(
                x for x in rows if (x["session"], x["turn"]) == (r["session"], r["turn"] - 1)
            )
            assert r["scheduled_s"] - (prev["sent_s"] + prev["e2el_s"]) >= 0.19
    from enginebench.loadgen.cli_args import parse_args

    with pytest.raises(BenchError, match="multi-turn sessions run closed loop"):
        parse_args(["--dataset-name", "sessions", "--request-rate", "2"])


def test_sessions_materialize_and_replay_from_a_prompt_file(
    tmp_path: Path, tokenizer_dir: Path
) -> None:
    """The workflow's path: the sessions saved to a prompt file (no server, no --concurrency),
    then replayed from it on whole sessions; rows cut mid-session are one line."""
    from enginebench.loadgen.cli_args import parse_args

    out = tmp_path / "p.jsonl"
    datasets.materialize(parse_args([
        "--dataset-name", "sessions", "--session-turns", "3", "--num-prompts", "9",
        "--tokenizer", str(tokenizer_dir), "--save-prompts", str(out),
    ]))  # fmt: skip
    rows = datasets.load_materialized(out)
    assert [(p.session, p.turn) for p in rows][:4] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    with serve_in_thread(FakeServerConfig(tokens=4)) as srv:
        base = ["--base-url", srv.base_url, "--model", "fake-model", "--prompts-file", str(out),
                "--tokenizer", str(tokenizer_dir), "--concurrency", "2"]  # fmt: skip
        assert main([*base, "--prompt-offset", "3", "--num-prompts", "6"]) == 0
        assert main([*base, "--prompt-offset", "2", "--num-prompts", "6"]) == 2  # mid-session
