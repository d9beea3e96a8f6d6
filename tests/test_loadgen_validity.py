"""Validity of a sweep point on synthetic records: a steady series, a saturated one, the rest."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from enginebench.loadgen.client import RequestRecord
from enginebench.loadgen.metrics import summarize
from enginebench.loadgen.validity import judge, mann_kendall

if TYPE_CHECKING:
    from tests.fixtures.fakeserver import FakeServerConfig


def _records(n: int, rate: float, service_s: float, seed: int = 0) -> list[RequestRecord]:
    """n arrivals at `rate` into one FIFO server taking `service_s` per request (with noise):
    below capacity the queue stays short, above it TTFT grows with every arrival."""
    rng = np.random.default_rng(seed)
    free, out = 0.0, []
    for i in range(n):
        arrive = i / rate
        start = max(arrive, free)
        service = service_s * float(rng.uniform(0.8, 1.2))
        free = start + service
        rec = RequestRecord(i, 16, 16, scheduled_s=arrive, sent_s=arrive)
        rec.ttft_s = start - arrive + 0.1 * service
        rec.e2el_s = free - arrive
        rec.end_s = free
        rec.output_len = 16
        rec.status = "ok"
        out.append(rec)
    return out


def _judge(records: list[RequestRecord], rate: float | None, min_s: float = 5.0) -> dict:
    duration = max(r.end_s for r in records)
    summary = summarize(records, duration)
    return judge(summary, records, rate, min_s)


def test_steady_point_is_valid() -> None:
    # 2 req/s offered, 0.2 s of service: 40% busy
    v = _judge(_records(64, 2.0, 0.2), 2.0)
    assert v["validity"] == [] and v["saturated"] is False
    assert v["throughput_ratio"] == pytest.approx(1.0, abs=0.05)
    assert not v["ttft_trend"]["growing"]


def test_overloaded_point_is_saturated() -> None:
    # 5 req/s offered, 0.5 s of service: capacity 2 req/s, the backlog grows with each arrival
    v = _judge(_records(64, 5.0, 0.5), 5.0)
    assert v["saturated"] is True and "saturated" in v["validity"]
    assert v["throughput_ratio"] < 0.95
    trend = v["ttft_trend"]
    assert trend["growing"] and trend["p"] < 1e-6 and trend["tau"] > 0.9 and trend["growth"] > 2


def _admit_all(n: int, rate: float, seed: int = 0) -> list[RequestRecord]:
    """n arrivals at `rate` into a server that admits every request at once and serves them as
    one batch that crawls (as MLC-LLM on 2 CPU cores at 8 req/s: 0.57 req/s achieved, median
    E2EL 104 of 112 s): the first request's first token comes at once, every later one's after
    ~50 s, and each request ends ~100 s after it arrived. No queue in front of the server, so
    no TTFT trend."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        arrive = i / rate
        rec = RequestRecord(i, 16, 16, scheduled_s=arrive, sent_s=arrive)
        rec.ttft_s = 0.1 if i == 0 else 50.0 * float(rng.uniform(0.95, 1.05))
        rec.e2el_s = 100.0 + float(rng.uniform(-0.2, 0.2))
        rec.end_s = arrive + rec.e2el_s
        rec.output_len = 16
        rec.status = "ok"
        out.append(rec)
    return out


def test_a_server_that_admits_everything_and_falls_behind_inside_is_saturated() -> None:
    """Its median E2EL is most of the run, so taking it off the duration (as the throughput
    test did) made the run look like it kept up; its unloaded latency does not."""
    recs = _admit_all(64, 8.0)
    v = _judge(recs, 8.0)
    assert not v["ttft_trend"]["growing"]  # no backlog in front of the server to see
    achieved = len(recs) / max(r.end_s for r in recs)
    assert achieved < 0.2 * 8.0
    e2el = float(np.median([r.e2el_s for r in recs]))
    assert len(recs) / (max(r.end_s for r in recs) - e2el) / 8.0 > 0.95  # the old test: "ok"
    assert v["saturated"] is True and v["throughput_ratio"] < 0.95


def test_short_failed_and_closed_loop() -> None:
    recs = _records(8, 4.0, 0.1)  # ~2 s
    recs[3].status, recs[3].error_kind = "failed", "http_500"
    v = _judge(recs, 4.0)
    assert "too_short" in v["validity"] and "failed_requests" in v["validity"]
    # closed loop (no offered rate) and rate inf: saturation does not apply
    assert _judge(_records(64, 2.0, 0.2), None)["saturated"] is None
    assert _judge(_records(64, 2.0, 0.2), math.inf)["saturated"] is None


def test_mann_kendall_against_known_values() -> None:
    tau, p = mann_kendall([1, 2, 3, 4, 5, 6, 7, 8])
    # S = 28, var = 8*7*21/18, z = 27/sqrt(var) = 3.340: two-sided p = 0.000837
    assert tau == 1.0 and p == pytest.approx(0.000837, abs=1e-5)
    assert mann_kendall([3, 1, 4, 1, 5])[0] == pytest.approx(0.3)  # S = 6 - 3 of 10 pairs
    tau, p = mann_kendall(list(np.random.default_rng(1).normal(size=200)))
    assert abs(tau) < 0.1 and p > 0.05
    assert mann_kendall([1, 2]) == (0.0, 1.0)


def test_overloaded_needs_a_backlog_and_growing_ttft() -> None:
    from enginebench.loadgen.validity import overloaded

    saturated = _records(40, 5.0, 0.5)  # capacity 2 req/s at 5 offered
    assert overloaded(saturated, inflight=30, rate=5.0)
    assert not overloaded(saturated, inflight=3, rate=5.0)  # no backlog: not (yet) overloaded
    assert not overloaded(_records(40, 2.0, 0.2), inflight=30, rate=2.0)  # TTFT flat
    assert not overloaded(saturated[:6], inflight=30, rate=5.0)  # too few completed to tell
    # one request at a time at 4.4 s each (transformers serve on the H200 at 5 req/s): the
    # first requests already queued, so their E2EL is no measure of the unloaded latency
    serial = _records(64, 5.0, 4.4)[:10]
    assert overloaded(serial, inflight=54, rate=5.0)


def _in_flight(n: int, rate: float, now: float, pace_s: float, slowdown: float) -> list:
    """n requests sent at `rate` up to `now`, none completed, all streaming: the first at
    `pace_s` a token, every later one `slowdown` times slower (a server that admits everything
    and slows every stream, as MLC-LLM on CPU)."""
    out = []
    for i in range(n):
        rec = RequestRecord(i, 128, 16, scheduled_s=i / rate, sent_s=i / rate)
        if rec.sent_s > now:
            break
        rec.heard, rec.ttft_s = 1.0 + rec.sent_s, 0.5
        gap = pace_s * (1 if i == 0 else slowdown)
        rec.itl_s = [gap] * min(127, int((now - rec.sent_s - 0.5) / gap))
        out.append(rec)
    return out


def test_overloaded_before_completions_from_the_streams_in_flight() -> None:
    from enginebench.loadgen.validity import (
        OLDEST_FACTOR,
        OLDEST_FLOOR_S,
        overloaded,
        streaming_latency,
    )

    # 1 req/s; unloaded 0.5 s + 128 x 5 ms = 1.14 s; a dozen in flight at 100x the pace
    crawl = _in_flight(20, 1.0, 16.0, 0.005, 100.0)
    assert streaming_latency(crawl) == pytest.approx(0.5 + 128 * 0.005)
    assert overloaded(crawl, inflight=len(crawl), rate=1.0, now_s=16.0)
    # the same streams, but the oldest not yet OLDEST_FACTOR x the unloaded latency old
    assert not overloaded(crawl, inflight=len(crawl), rate=1.0, now_s=OLDEST_FACTOR * 1.14 - 0.5)
    assert not overloaded(crawl, inflight=len(crawl), rate=1.0, now_s=OLDEST_FLOOR_S - 0.5)
    assert not overloaded(crawl, inflight=3, rate=1.0, now_s=16.0)  # no backlog
    assert not overloaded(crawl, inflight=len(crawl), rate=1.0)  # no clock: not judged
    # a healthy batching server: every stream 3x slower than alone, each done in ~2.4 s
    healthy = [r for r in _in_flight(40, 8.0, 5.0, 0.005, 3.0) if r.sent_s > 5.0 - 2.4]
    assert not overloaded(healthy, inflight=len(healthy), rate=8.0, now_s=5.0)
    # too few streams with a pace yet, or outputs of no set length: not judged
    assert streaming_latency(crawl[:1]) is None
    # a point during which no stream starts (MLC-LLM past saturation: every prefill waits),
    # judged from streams seen before it (here a warm-up's, a few at once: 4x slower)
    waiting = [RequestRecord(i, 128, 16, scheduled_s=i / 2, sent_s=i / 2) for i in range(64)]
    for r in waiting:
        r.heard = 1.0
    warm = _in_flight(4, 1e9, 2.0, 0.02, 1.0)
    assert not overloaded(waiting, inflight=64, rate=2.0, now_s=40.0)
    assert overloaded(waiting, inflight=64, rate=2.0, now_s=40.0, reference=warm)
    assert not overloaded(waiting, inflight=64, rate=2.0, now_s=20.0, reference=warm)
    for r in crawl:
        r.expected_output_len = None  # type: ignore[assignment]
    assert streaming_latency(crawl) is None


def _bench(url: str, out: Path, rate: str, n: str) -> dict:
    import json

    from enginebench.loadgen.runner import main

    argv = ["--base-url", url, "--model", "fake", "--dataset-name", "fixed",
            "--fixed-output-len", "16", "--num-prompts", n, "--request-rate", rate,
            "--save-result", "--result-dir", str(out), "--result-filename", "p.json"]  # fmt: skip
    main(argv)
    return dict(json.loads((out / "p.json").read_text()))


def _over_then_steady(
    cfg: FakeServerConfig, tmp_path: Path, rate: str, n: str
) -> tuple[dict, float, dict]:
    """Against a fake server of `cfg`: an overloaded point (its summary, the seconds it took),
    then a steady one, 24 requests at 4 req/s."""
    import time

    from tests.fixtures.fakeserver import serve_in_thread

    with serve_in_thread(cfg) as srv:
        t0 = time.monotonic()
        over = _bench(srv.base_url, tmp_path / "over", rate, n)
        took = time.monotonic() - t0
        steady = _bench(srv.base_url, tmp_path / "steady", "4", "24")
    return over, took, steady


def test_a_server_slowing_every_request_from_the_first_is_saturated() -> None:
    """8 arrivals at 1 req/s, each taking 12 s, all at once (a server that admits every request
    and slows them all: MLC-LLM on 2 CPU cores, 1.3 s a request alone): 0.42 req/s achieved.
    Judged from its own first arrivals alone, their 12 s were taken out of the window (ratio
    1.14, not saturated); with the request the server served alone (the warm-up's first), the
    window keeps what is over GROWTH x that."""
    records = []
    for i in range(8):
        rec = RequestRecord(i, 16, 16, scheduled_s=float(i), sent_s=float(i))
        rec.ttft_s, rec.e2el_s, rec.end_s = 0.5, 12.0, i + 12.0
        rec.output_len, rec.status = 16, "ok"
        records.append(rec)
    alone = RequestRecord(-1, 16, 16)
    alone.ttft_s, alone.e2el_s, alone.output_len, alone.status = 0.05, 1.3, 16, "ok"
    summary = summarize(records, 19.0)
    before = judge(summary, records, 1.0, 5.0)
    assert not before["saturated"] and before["throughput_ratio"] > 1
    after = judge(summary, records, 1.0, 5.0, reference=[alone])
    assert after["saturated"] and after["validity"] == ["saturated"]
    assert after["throughput_ratio"] == pytest.approx(8 / (19.0 - 2 * 1.3))
    # a reference that is not the same work (a shorter output) is not a yardstick
    alone.output_len = 8
    assert judge(summary, records, 1.0, 5.0, reference=[alone])["throughput_ratio"] > 1
    # a steady server, its latency under load within GROWTH x the reference: unchanged
    steady = _records(64, 1.0, 0.5)
    fast = RequestRecord(-1, 16, 16)
    fast.ttft_s, fast.e2el_s, fast.output_len, fast.status = 0.05, 0.4, 16, "ok"
    duration = max(r.end_s for r in steady)
    judged = judge(summarize(steady, duration), steady, 1.0, 5.0, reference=[fast])
    assert judged["throughput_ratio"] == _judge(steady, 1.0)["throughput_ratio"]
    assert not judged["saturated"]


def test_an_overloaded_point_stops_early_a_steady_one_runs_out(tmp_path: Path) -> None:
    """A server that generates one request at a time, 16 tokens x 5 ms: ~12 req/s at most."""
    from tests.fixtures.fakeserver import FakeServerConfig

    cfg = FakeServerConfig(model="fake", tokens=16, token_delay_s=0.005, max_running=1)
    # 400 requests at 50 req/s: an 8 s schedule, then ~25 s of queue to drain
    over, took, steady = _over_then_steady(cfg, tmp_path, "50", "400")
    assert over["early_stopped"] and over["saturated"] and took < 15
    assert over["validity"][:2] == ["saturated", "early_stopped"]
    assert over["cancelled"] > 0 and over["completed"] + over["cancelled"] <= 400
    assert not steady["early_stopped"] and steady["saturated"] is False
    assert steady["completed"] == 24


def test_an_overloaded_point_stops_early_after_its_last_send(tmp_path: Path) -> None:
    """A schedule sent before the watch starts (360 requests at 60 req/s: 6 s) to a server that
    completes ~6 a second (one at a time, 16 tokens x 10 ms): its backlog shrinks from then on,
    but by less than the offered rate a second. Past the drain's grace (20 s from the last
    send) the point stops; before, it drained the whole queue (~60 s)."""
    from tests.fixtures.fakeserver import FakeServerConfig

    cfg = FakeServerConfig(model="fake", tokens=16, token_delay_s=0.01, max_running=1)
    over, took, steady = _over_then_steady(cfg, tmp_path, "60", "360")
    assert over["early_stopped"] and over["saturated"] and 26 < took < 40
    assert over["cancelled"] > 0 and over["completed"] + over["cancelled"] == 360
    assert not steady["early_stopped"] and steady["saturated"] is False
    assert steady["completed"] == 24


def test_a_short_drain_is_let_finish(tmp_path: Path) -> None:
    """30 requests at 10 req/s (3 s) to a server doing ~3 a second, one at a time (16 tokens x
    20 ms): over capacity from the start, its TTFT growing, but the queue drains in ~10 s, under
    the drain's grace: every request completes (before, the point stopped at ~8 s with a third
    of them cancelled, as MLC-LLM's 8-request point at 1 req/s was, on 2 CPU cores)."""
    from tests.fixtures.fakeserver import FakeServerConfig

    cfg = FakeServerConfig(model="fake", tokens=16, token_delay_s=0.02, max_running=1)
    over, took, _ = _over_then_steady(cfg, tmp_path, "10", "30")
    assert not over["early_stopped"] and over["completed"] == 30 and over["cancelled"] == 0
    assert took < 20


def test_a_server_that_slows_every_stream_stops_early(tmp_path: Path) -> None:
    """Every stream shares one decoder (16 tokens x 5 ms each alone: 12.5 req/s at most), so all
    requests are admitted and crawl, and none queues in front of the server: no TTFT trend.
    Before, such a point (MLC-LLM on 2 CPU cores) ran and drained its whole schedule."""
    from tests.fixtures.fakeserver import FakeServerConfig

    cfg = FakeServerConfig(model="fake", tokens=16, token_delay_s=0.005, shared_decode=True)
    # 800 requests at 40 req/s: a 20 s schedule, 64 s of decoding; the oldest request in
    # flight passes OLDEST_FLOOR_S (10 s) at ~10 s, then three checks in a row
    over, took, steady = _over_then_steady(cfg, tmp_path, "40", "800")
    assert over["early_stopped"] and over["saturated"] and took < 19
    assert over["cancelled"] > 0
    assert not steady["early_stopped"] and steady["saturated"] is False
    assert steady["completed"] == 24
    # a later point reads the server's pace from these records (bench --reference-records)
    from enginebench.loadgen.runner import _streams
    from enginebench.loadgen.validity import streaming_latency

    refs = _streams(str(tmp_path / "steady" / "p.jsonl"))
    assert len(refs) == 24 and all(len(r.itl_s) == 15 for r in refs)
    assert 16 * 0.005 <= (streaming_latency(refs) or 0) < 0.5
    assert _streams(str(tmp_path / "none.jsonl")) == []


def test_a_late_schedule_is_flagged_on_open_loop_only() -> None:
    """The load generator 0.3 s behind its schedule on a few sends (a starved client): the
    offered load was not the one asked for."""
    records = _records(64, 2.0, 0.2)
    for r in records[::8]:
        r.dispatch_lag_s = 0.3
    duration = max(r.end_s for r in records)
    summary = summarize(records, duration)
    assert summary["dispatch_lag_ms"]["p99"] > 100
    assert "late_sends" in judge(summary, records, 2.0, 5.0, open_loop=True)["validity"]
    assert "late_sends" not in judge(summary, records, None, 5.0)["validity"]  # closed loop
    for r in records:
        r.dispatch_lag_s = 0.002
    summary = summarize(records, duration)
    assert "late_sends" not in judge(summary, records, 2.0, 5.0, open_loop=True)["validity"]
