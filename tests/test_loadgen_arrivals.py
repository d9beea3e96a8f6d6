"""Arrival process: rate, burstiness (coefficient of variation), seeding, absolute schedule,
and the exact send schedule of `vllm bench serve` for the same seed."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from enginebench.loadgen import runner
from enginebench.loadgen.arrivals import arrival_offsets
from enginebench.loadgen.client import Endpoint, RequestRecord


def gaps(offsets: np.ndarray) -> np.ndarray:
    return np.diff(np.concatenate([[0.0], offsets]))


@pytest.mark.parametrize("burstiness", [0.25, 0.5, 1.0, 2.0, 4.0])
def test_mean_rate_and_coefficient_of_variation(burstiness: float) -> None:
    n, rate = 20_000, 8.0
    g = gaps(arrival_offsets(n, rate, burstiness, seed=1))
    assert g.mean() == pytest.approx(1 / rate, rel=1e-9)  # rescaled: the last lands at n/rate
    # Gamma(k, theta): CV = 1/sqrt(k); with n = 20k the sample CV is within a few percent
    assert g.std() / g.mean() == pytest.approx(1 / math.sqrt(burstiness), rel=0.06)
    assert (g >= 0).all()


def test_poisson_gaps_look_exponential() -> None:
    g = gaps(arrival_offsets(20_000, 5.0, 1.0, seed=3))
    # P(gap < mean) = 1 - 1/e for an exponential distribution
    assert (g < g.mean()).mean() == pytest.approx(1 - math.exp(-1), abs=0.015)


def test_last_arrival_lands_at_n_over_rate() -> None:
    for seed in range(5):
        off = arrival_offsets(100, 4.0, 1.0, seed)
        assert off[-1] == pytest.approx(25.0)
        assert (np.diff(off) >= 0).all()


def test_constant_gaps_when_burstiness_is_infinite() -> None:
    off = arrival_offsets(10, 2.0, math.inf)
    assert off == pytest.approx(np.arange(1, 11) / 2.0)


def test_infinite_rate_sends_everything_at_zero() -> None:
    assert (arrival_offsets(50, math.inf, 1.0) == 0).all()


def vllm_get_request_offsets(n: int, rate: float, burstiness: float, seed: int) -> list[float]:
    """vLLM's `get_request` (vllm/benchmarks/serve.py) written out: numpy's legacy global
    generator seeded once, one gamma draw per request, running sums, rescaled to end at n/rate.
    """
    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        delay_ts: list[float] = []
        for _ in range(n):
            if rate == float("inf"):
                delay_ts.append(0)
            elif burstiness == float("inf"):
                delay_ts.append(1.0 / rate)
            else:
                theta = 1.0 / (rate * burstiness)
                delay_ts.append(np.random.gamma(shape=burstiness, scale=theta))
        for i in range(1, len(delay_ts)):
            delay_ts[i] += delay_ts[i - 1]
        if delay_ts[-1] != 0:
            normalize_factor = (n / rate) / delay_ts[-1]
            delay_ts = [delay * normalize_factor for delay in delay_ts]
        return [float(d) for d in delay_ts]
    finally:
        np.random.set_state(saved)


@pytest.mark.parametrize(
    ("seed", "rate", "burstiness"),
    [
        (0, 1.0, 1.0),
        (0, 8.0, 0.25),  # shape < 1: numpy's rejection sampler, a variable number of draws
        (1, 3.5, 1.0),
        (42, 10.0, 4.0),
        (1234, 0.5, 0.7),
        (2**31 - 1, 100.0, 2.0),
        (7, 2.0, math.inf),
        (7, math.inf, 1.0),
    ],
)
def test_same_schedule_as_vllm_bench_serve(seed: int, rate: float, burstiness: float) -> None:
    for n in (1, 2, 37, 1000):
        expected = vllm_get_request_offsets(n, rate, burstiness, seed)
        got = arrival_offsets(n, rate, burstiness, seed).tolist()
        assert got == expected  # bit for bit, not approximately


def test_schedule_leaves_numpy_global_state_alone() -> None:
    np.random.seed(5)
    expected = np.random.random()
    np.random.seed(5)
    arrival_offsets(100, 2.0, 0.5, seed=9)
    assert np.random.random() == expected


def test_seeded_reproducibility() -> None:
    a = arrival_offsets(500, 3.0, 0.7, seed=42)
    assert np.array_equal(a, arrival_offsets(500, 3.0, 0.7, seed=42))
    assert not np.array_equal(a, arrival_offsets(500, 3.0, 0.7, seed=43))


@pytest.mark.parametrize(("rate", "burstiness"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0)])
def test_invalid_parameters(rate: float, burstiness: float) -> None:
    with pytest.raises(ValueError):
        arrival_offsets(10, rate, burstiness)


def test_empty_schedule() -> None:
    assert arrival_offsets(0, 1.0).size == 0


def test_sends_follow_the_absolute_schedule_despite_late_timers(monkeypatch: Any) -> None:
    """Every timer wakes 3 ms late; sends must not drift (relative sleeps would add up)."""
    real_sleep = asyncio.sleep
    late = 0.003

    async def late_sleep(delay: float, *a: Any) -> None:
        await real_sleep(delay + late)

    async def fake_send(session: Any, ep: Any, body: bytes, rec: RequestRecord, t0: float) -> None:
        import time

        rec.sent_s = time.perf_counter() - t0
        rec.status = "ok"

    monkeypatch.setattr(runner.asyncio, "sleep", late_sleep)
    monkeypatch.setattr(runner, "send", fake_send)
    n, rate = 60, 200.0

    async def go() -> list[RequestRecord]:
        records = [RequestRecord(i, 1, 1) for i in range(n)]
        bench = runner.Bench(None, Endpoint("u", "m"), [b""] * n, records, None, False)  # type: ignore[arg-type]
        offsets = arrival_offsets(n, rate, math.inf, 0).tolist()
        await bench.open_loop(offsets, rate, None)
        return records

    records = asyncio.run(go())
    lags = [r.sent_s - r.scheduled_s for r in records]
    assert all(r.ok for r in records)
    # relative sleeps would be >= n * 3 ms = 180 ms late at the end
    assert max(lags) < 0.03
    assert records[-1].scheduled_s == pytest.approx(n / rate)
    assert records[-1].sent_s == pytest.approx(n / rate, abs=0.03)
