"""Parity with `vllm bench serve` at the edges: percentile flags, summary and table shape."""

from __future__ import annotations

import pytest

from enginebench.loadgen import cli_args
from enginebench.loadgen.client import RequestRecord
from enginebench.loadgen.errors import BenchError
from enginebench.loadgen.metrics import summarize
from enginebench.loadgen.results import format_table


def test_percentiles_0_and_100_accepted_like_vllm() -> None:
    assert cli_args._percentiles("0,50,99.9,100") == [0.0, 50.0, 99.9, 100.0]


@pytest.mark.parametrize("text", ["-1", "100.5", "50,101", "nan", "", "x"])
def test_percentiles_outside_0_100_rejected(text: str) -> None:
    with pytest.raises(BenchError):
        cli_args._percentiles(text)


def _records() -> list[RequestRecord]:
    out = []
    for i in range(3):
        r = RequestRecord(i, 4, 10)
        r.sent_s, r.ttft_s, r.e2el_s, r.output_len, r.status = i * 0.1, 0.2, 0.2, 4, "ok"
        out.append(r)
    return out


def test_table_skips_unmeasured_metrics_and_shows_the_engine_account() -> None:
    records = _records()
    metrics, pcts = ["ttft", "tpot", "itl", "e2el"], [0.0, 50.0, 100.0]
    s = summarize(records, 1.0, pcts, metrics, stream=False)
    assert s["p0_ttft_ms"] == pytest.approx(200.0) and s["p100_tpot_ms"] is None
    table = format_table(s, metrics, pcts)
    assert "P0 TTFT (ms):" in table and "P100 E2EL (ms):" in table
    assert "TPOT" not in table and "ITL" not in table and "Inter-token" not in table
    assert "Engine's own account" not in table
    for r in records:
        r.engine_cached_tokens, r.engine_prompt_ms = 9, 1.5
        r.engine_decode_ms_per_token, r.engine_account = 0.5, "llama.cpp timings"
    table = format_table(summarize(records, 1.0, pcts, metrics), metrics, pcts)
    assert "Engine's own account" in table and "llama.cpp timings" in table
    assert "Unrequested cached prompt tokens:" in table and "27" in table
    assert "TTFT beyond engine prompt time (ms):" in table
