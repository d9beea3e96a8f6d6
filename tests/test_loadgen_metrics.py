"""Metric formulas against hand-computed cases (vllm bench serve's definitions)."""

from __future__ import annotations

import pytest

from enginebench.loadgen.client import RequestRecord
from enginebench.loadgen.metrics import (
    PERCENTILES,
    achieved_rate,
    goodput_count,
    peak_concurrency,
    percentile_key,
    stats_ms,
    summarize,
)


def rec(
    index: int,
    sent: float,
    ttft: float | None,
    e2el: float | None,
    out: int | None,
    prompt: int = 10,
    itl: list[float] | None = None,
    ok: bool = True,
    expected: int = 11,
    queue: float = 0.0,
) -> RequestRecord:
    r = RequestRecord(index, expected, prompt)
    r.sent_s, r.ttft_s, r.e2el_s, r.output_len, r.queue_s = sent, ttft, e2el, out, queue
    r.itl_s = itl or []
    if ok:
        r.status = "ok"
    else:
        r.fail("http_500", "boom")
        r.http_status = 500
    return r


def case() -> list[RequestRecord]:
    return [
        rec(0, 0.0, 0.1, 1.1, 11, prompt=10, itl=[0.1] * 10),  # TPOT = 1.0 / 10
        rec(1, 0.5, 0.2, 0.2, 1, prompt=20),  # one token: no TPOT
        rec(2, 0.7, None, None, None, ok=False),
    ]


def test_hand_computed_summary() -> None:
    s = summarize(case(), 2.0, percentiles=PERCENTILES)
    assert s["completed"] == 2 and s["failed"] == 1
    assert s["total_input_tokens"] == 30 and s["total_output_tokens"] == 12
    assert s["request_throughput"] == pytest.approx(1.0)
    assert s["output_throughput"] == pytest.approx(6.0)
    assert s["total_token_throughput"] == pytest.approx(21.0)
    assert s["input_throughput"] == pytest.approx(15.0)
    # TTFT [100, 200] ms: population std 50, linear-interpolated p90 = 190
    assert s["mean_ttft_ms"] == pytest.approx(150.0)
    assert s["median_ttft_ms"] == pytest.approx(150.0)
    assert s["std_ttft_ms"] == pytest.approx(50.0)
    assert s["p90_ttft_ms"] == pytest.approx(190.0)
    assert s["p99_ttft_ms"] == pytest.approx(199.0)
    # TPOT only from the 11-token request
    assert s["mean_tpot_ms"] == pytest.approx(100.0) and s["std_tpot_ms"] == pytest.approx(0.0)
    assert s["mean_itl_ms"] == pytest.approx(100.0) and s["p99_itl_ms"] == pytest.approx(100.0)
    assert s["mean_e2el_ms"] == pytest.approx(650.0) and s["std_e2el_ms"] == pytest.approx(450.0)
    assert s["max_concurrent_requests"] == 2
    assert s["request_goodput"] is None
    assert s["errors_by_kind"] == {"http_500": 1}


def test_percentile_metric_selection_and_keys() -> None:
    s = summarize(case(), 2.0, percentiles=[25, 99.9], percentile_metrics=["e2el"])
    assert "mean_ttft_ms" not in s and "p25_e2el_ms" in s and "p99.9_e2el_ms" in s
    assert "mean_ttft_content_ms" in s  # ours, always reported
    assert percentile_key(99.0) == "p99" and percentile_key(99.9) == "p99.9"


def test_goodput_like_vllm() -> None:
    records = case()
    assert goodput_count(records, {"ttft": 150}) == 1  # 100 ms passes, 200 ms does not
    # a one-token output counts as TPOT 0 (passes any TPOT SLO); the 100 ms one fails 50 ms
    assert goodput_count(records, {"tpot": 50}) == 1
    assert goodput_count(records, {"ttft": 150, "tpot": 50}) == 0
    assert goodput_count(records, {"e2el": 1100}) == 2  # SLO is inclusive
    s = summarize(records, 2.0, goodput_slo_ms={"ttft": 150})
    assert s["request_goodput"] == pytest.approx(0.5)
    good = [r for r in records if r.ok and (r.ttft_s or 0) <= 0.150]
    assert s["output_goodput"] == pytest.approx(sum(r.output_len or 0 for r in good) / 2.0)
    assert summarize(records, 2.0)["output_goodput"] is None


def test_empty_and_all_failed_report_zero_like_vllm() -> None:
    s = summarize([rec(0, 0.0, None, None, None, ok=False)], 1.0)
    assert s["completed"] == 0 and s["failed"] == 1
    assert s["mean_ttft_ms"] == 0.0 and s["p99_tpot_ms"] == 0.0
    assert s["max_concurrent_requests"] == 0


def test_stats_use_population_std_and_linear_percentiles() -> None:
    st = stats_ms([0.001, 0.002, 0.003, 0.004], [50, 90])
    assert st["mean"] == pytest.approx(2.5)
    assert st["std"] == pytest.approx(1.118033988749895)
    assert st["p90"] == pytest.approx(3.7)


def test_peak_concurrency_touching_intervals_do_not_overlap() -> None:
    records = [rec(0, 0.0, 0.1, 1.0, 2), rec(1, 1.0, 0.1, 1.0, 2), rec(2, 1.5, 0.1, 0.1, 2)]
    assert peak_concurrency(records) == 2


def test_achieved_rate_uses_arrivals_not_semaphore_releases() -> None:
    records = [rec(i, i * 0.5 + 3.0, 0.1, 0.2, 2, queue=3.0) for i in range(5)]
    assert achieved_rate(records) == pytest.approx(2.0)
    assert achieved_rate(records[:1]) is None


def test_short_outputs_and_discrepancies() -> None:
    a = rec(0, 0.0, 0.1, 1.1, 11, expected=11)
    b = rec(1, 0.1, 0.1, 1.0, 7, expected=11)
    a.server_completion_tokens, a.client_output_tokens = 11, 11
    b.server_completion_tokens, b.client_output_tokens = 7, 9
    a.server_prompt_tokens, b.server_prompt_tokens = 11, 11  # BOS on top of 10
    s = summarize([a, b], 1.0, ignore_eos=True)
    assert s["short_outputs"] == 1 and s["short_output_indices"] == [1]
    out = s["token_count_discrepancies"]["output"]
    assert out == {"compared": 2, "differ": 1, "mean_diff": -1.0, "max_abs_diff": 2}
    assert s["token_count_discrepancies"]["prompt"]["mean_diff"] == pytest.approx(1.0)
    assert summarize([a, b], 1.0, ignore_eos=False)["short_outputs"] is None


def test_dispatch_lag_summary() -> None:
    records = case()
    for r, lag in zip(records, [0.0001, 0.0002, 0.0010], strict=True):
        r.dispatch_lag_s = lag
    lag_ms = summarize(records, 1.0)["dispatch_lag_ms"]
    assert lag_ms["max"] == pytest.approx(1.0) and lag_ms["p50"] == pytest.approx(0.2)


def test_total_input_tokens_prefer_the_servers_count() -> None:
    a, b, c = case()
    a.server_prompt_tokens = 11  # the server counted a BOS on top of the client's 10
    b.prompt_len = None  # no client count: neither side knows, counts 0
    s = summarize([a, b, c], 2.0)
    assert s["total_input_tokens"] == 11 and s["total_input_tokens_client"] == 10
    assert s["input_throughput"] == pytest.approx(5.5)
    assert s["total_token_throughput"] == pytest.approx((11 + 12) / 2.0)
    b.server_prompt_tokens = 20
    s = summarize([a, b, c], 2.0)
    assert s["total_input_tokens"] == 31 and s["total_input_tokens_client"] == 10
    a.prompt_len = None
    assert summarize([a, b], 2.0)["total_input_tokens_client"] is None  # nobody counted
    assert summarize([c], 2.0)["total_input_tokens_client"] == 0  # nothing completed


def test_no_stream_reports_tpot_and_itl_as_not_measured() -> None:
    records = case()
    s = summarize(records, 2.0, percentiles=[50, 99], stream=False)
    for name in ("tpot", "itl"):
        for stat in ("mean", "median", "std", "p50", "p99"):
            assert s[f"{stat}_{name}_ms"] is None, (stat, name)
    assert s["mean_ttft_ms"] == pytest.approx(150.0) and s["mean_e2el_ms"] == pytest.approx(650.0)
    # streamed with nothing to measure: 0 as vLLM (np.mean(x or 0))
    one_token = [rec(0, 0.0, 0.1, 0.1, 1)]
    assert summarize(one_token, 1.0)["mean_tpot_ms"] == 0.0
    assert summarize(one_token, 1.0, stream=False)["mean_tpot_ms"] is None


def test_no_stream_goodput_with_a_tpot_slo_cannot_be_judged() -> None:
    def goodput(slo: dict[str, float], stream: bool) -> float | None:
        value: float | None = summarize(case(), 2.0, goodput_slo_ms=slo, stream=stream)[
            "request_goodput"
        ]
        return value

    assert goodput({"tpot": 50}, stream=False) is None
    assert goodput({"ttft": 150, "tpot": 50}, stream=False) is None
    assert goodput({"ttft": 150}, stream=False) == pytest.approx(0.5)  # TTFT/E2EL still judged
    assert goodput({"tpot": 50}, stream=True) == pytest.approx(0.5)


def test_percentiles_0_and_100_are_min_and_max() -> None:
    s = summarize(case(), 2.0, percentiles=[0, 100])
    assert s["p0_ttft_ms"] == pytest.approx(100.0) and s["p100_ttft_ms"] == pytest.approx(200.0)
    assert s["p0_e2el_ms"] == pytest.approx(200.0) and s["p100_e2el_ms"] == pytest.approx(1100.0)
    assert percentile_key(0.0) == "p0" and percentile_key(100.0) == "p100"


ENGINE_KEYS = (
    "engine_account",
    "engine_cached_prompt_tokens",
    "engine_cached_prompt_fraction",
    "requests_with_cached_prompt_tokens",
    "expected_cached_prompt_tokens",
    "expected_cached_prompt_fraction",
    "expected_prefix_served_fraction",
    "unrequested_cached_prompt_tokens",
    "requests_with_unrequested_cache_hits",
    "mean_engine_prompt_ms",
    "median_engine_prompt_ms",
    "median_engine_decode_ms_per_token",
    "ttft_beyond_engine_ms",
    "tpot_beyond_engine_ms",
)


def test_engine_account_absent_is_none() -> None:
    s = summarize(case(), 2.0)
    assert all(s[k] is None for k in ENGINE_KEYS), {k: s[k] for k in ENGINE_KEYS}
    assert s["engine_reported_requests"] == 0


def test_engine_account_hand_computed() -> None:
    a, b, c = case()  # a: TTFT 100 ms, TPOT 100 ms, prompt 10; b: one token, prompt 20
    a.engine_cached_tokens, a.shared_prefix_len, a.server_prompt_tokens = 8, 8, 12
    a.engine_prompt_ms, a.engine_decode_ms_per_token = 60.0, 90.0
    a.engine_account = "llama.cpp timings"
    b.engine_cached_tokens, b.engine_account = 16, "usage.prompt_tokens_details"
    c.engine_cached_tokens, c.engine_account = 999, "usage.prompt_tokens_details"  # failed
    s = summarize([a, b, c], 2.0)
    assert s["engine_account"] == ["llama.cpp timings", "usage.prompt_tokens_details"]
    assert s["engine_reported_requests"] == 2
    assert s["engine_cached_prompt_tokens"] == 24
    assert s["engine_cached_prompt_fraction"] == pytest.approx(24 / (12 + 20))
    assert s["requests_with_cached_prompt_tokens"] == 2
    # a's 8 were asked for (shared prefix); b shares nothing, so its 16 were not
    assert s["unrequested_cached_prompt_tokens"] == 16
    assert s["requests_with_unrequested_cache_hits"] == 1
    assert s["mean_engine_prompt_ms"] == 60.0 and s["median_engine_decode_ms_per_token"] == 90.0
    assert s["ttft_beyond_engine_ms"] == pytest.approx(100.0 - 60.0)
    assert s["tpot_beyond_engine_ms"] == pytest.approx(100.0 - 90.0)
    b.engine_cached_tokens = 0
    s = summarize([a, b], 2.0)
    assert s["requests_with_cached_prompt_tokens"] == 1
    assert s["unrequested_cached_prompt_tokens"] == 0
    assert s["requests_with_unrequested_cache_hits"] == 0
    # without streaming the client's TTFT is the whole answer: no overhead to compare
    s = summarize([a, b], 2.0, stream=False)
    assert s["ttft_beyond_engine_ms"] is None and s["tpot_beyond_engine_ms"] is None
    assert s["mean_engine_prompt_ms"] == 60.0


def test_prefix_groups_expected_beside_the_engines_count() -> None:
    """The workload's expectation (an ideal prefix cache) and the share of it the engine served:
    per request min(cached, expected), so a BOS or a whole block more earns no credit."""
    a, b, c = case()  # a: prompt 10 (server 12), b: prompt 20, c failed
    a.expected_cached_len, b.expected_cached_len = 0, 16  # a first of its group, b after it
    c.expected_cached_len = 16
    s = summarize([a, b, c], 2.0)
    assert s["expected_cached_prompt_tokens"] == 16  # the failed request is not counted
    assert s["expected_cached_prompt_fraction"] == pytest.approx(16 / (10 + 20))
    assert s["expected_prefix_served_fraction"] is None  # the engine reported nothing
    a.engine_cached_tokens, b.engine_cached_tokens = 1, 12  # a BOS; 12 of b's 16
    a.server_prompt_tokens = 12
    s = summarize([a, b], 2.0)
    assert s["expected_prefix_served_fraction"] == pytest.approx(12 / 16)
    assert s["expected_cached_prompt_fraction"] == pytest.approx(16 / (12 + 20))
    b.engine_cached_tokens = 32  # more than expected: capped at what was expected
    assert summarize([a, b], 2.0)["expected_prefix_served_fraction"] == 1.0
