"""Ramp-up within a point (`--ramp-up-strategy`): vLLM's schedule draw for draw, its checks, and
the summary's latency by offered rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from enginebench.loadgen.arrivals import Ramp, arrival_offsets
from enginebench.loadgen.cli_args import parse_args
from enginebench.loadgen.errors import BenchError
from enginebench.loadgen.runner import main
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread


@pytest.mark.parametrize("strategy", ["linear", "exponential"])
@pytest.mark.parametrize("burstiness", [1.0, 0.5, float("inf")])
def test_the_schedule_is_vllms(strategy: str, burstiness: float) -> None:
    """vllm bench serve (get_request): request i's rate from the ramp, one gamma gap each from
    the legacy seeded stream, summed, not rescaled."""
    n, start, end, seed = 30, 2.0, 12.0, 7
    saved = np.random.get_state()
    np.random.seed(seed)  # what vLLM does before drawing
    gaps = []
    for i in range(n):
        progress = i / max(n - 1, 1)
        if strategy == "linear":
            rate = start + (end - start) * progress
        else:
            rate = start * (end / start) ** progress
        if burstiness == float("inf"):
            gaps.append(1.0 / rate)
        else:
            gaps.append(np.random.gamma(shape=burstiness, scale=1.0 / (rate * burstiness)))
    np.random.set_state(saved)
    got = arrival_offsets(n, float("inf"), burstiness, seed, Ramp(strategy, start, end))
    assert got.tolist() == np.cumsum(gaps).tolist()
    assert Ramp(strategy, start, end).rates(n)[[0, -1]].tolist() == pytest.approx([start, end])


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--ramp-up-strategy", "linear", "--ramp-up-start-rps", "1"], "needs --ramp-up-start"),
        (["--ramp-up-start-rps", "1"], "need --ramp-up-strategy"),
        (["--ramp-up-strategy", "linear", "--ramp-up-start-rps", "5", "--ramp-up-end-rps", "2"],
         "must be at most --ramp-up-end-rps"),
        (["--ramp-up-strategy", "linear", "--ramp-up-start-rps", "1", "--ramp-up-end-rps", "2",
          "--request-rate", "3"], "a ramp sets the rate itself"),
        (["--ramp-up-strategy", "linear", "--ramp-up-start-rps", "1", "--ramp-up-end-rps", "2",
          "--point", "rate-1"], "not this run's load \\(rate-2\\)"),
    ],
)  # fmt: skip
def test_bad_ramps_are_one_line(argv: list[str], match: str) -> None:
    with pytest.raises(BenchError, match=match):
        parse_args(argv)


def test_a_ramp_against_the_fake_server(tmp_path: Path, tokenizer_dir: Path) -> None:
    with serve_in_thread(FakeServerConfig(tokens=4)) as srv:
        argv = [
            "--base-url", srv.base_url, "--model", "fake-model", "--tokenizer", str(tokenizer_dir),
            "--random-input-len", "16", "--random-output-len", "4", "--num-prompts", "40",
            "--ramp-up-strategy", "linear", "--ramp-up-start-rps", "40",
            "--ramp-up-end-rps", "200", "--point", "rate-200", "--save-result",
            "--result-dir", str(tmp_path), "--result-filename", "r.json",
        ]  # fmt: skip
        assert main(argv) == 0
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["point"]["name"] == "rate-200" and summary["completed"] == 40
    assert (summary["ramp_up_strategy"], summary["ramp_up_start_rps"]) == ("linear", 40.0)
    assert summary["ramp_up_end_rps"] == 200.0 and summary["saturated"] is None
    steps = summary["by_offered_rate"]
    assert [s["from_rps"] for s in steps] == pytest.approx([40, 72, 104, 136, 168])
    assert sum(s["requests"] for s in steps) == 40
    assert all(s["p50_ttft_ms"] > 0 and s["p50_tpot_ms"] is not None for s in steps)
