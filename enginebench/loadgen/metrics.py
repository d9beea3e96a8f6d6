"""Summary metrics from request records, defined as `vllm bench serve` defines them.

* TPOT_i = (E2EL_i - TTFT_i) / (n_out_i - 1), only for requests with n_out_i > 1;
* ITL: the gaps between chunks of every request, pooled;
* throughputs divide by the duration D (end of the last request - start of scheduling);
* mean / median / std (population) / percentiles (numpy linear interpolation), in ms; an empty
  list reports 0 like vLLM (`np.mean(x or 0)`);
* goodput: requests meeting every SLO (ms) divided by D, with TPOT taken as 0 for one-token
  outputs;
* max_concurrent_requests: peak of a sweep over the successful requests' [send, end) intervals.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from enginebench.loadgen.client import RequestRecord

PERCENTILE_METRICS = ("ttft", "tpot", "itl", "e2el", "ttft_content", "client_queue_time")
GOODPUT_METRICS = ("ttft", "tpot", "e2el")


def percentile_key(p: float) -> str:
    """vLLM's key spelling: 99 -> 'p99', 99.9 -> 'p99.9'."""
    return f"p{int(p)}" if int(p) == p else f"p{p}"


def stats_ms(values: Sequence[float], percentiles: Sequence[float]) -> dict[str, float]:
    """mean / median / std / pP of seconds, reported in milliseconds."""
    arr = np.asarray(values if len(values) else [0.0], dtype=float) * 1000.0
    out = {"mean": float(np.mean(arr)), "median": float(np.median(arr)), "std": float(np.std(arr))}
    for p in percentiles:
        out[percentile_key(p)] = float(np.percentile(arr, p))
    return out


def tpot_s(rec: RequestRecord) -> float | None:
    n = rec.output_len or 0
    if n > 1 and rec.e2el_s is not None and rec.ttft_s is not None:
        return (rec.e2el_s - rec.ttft_s) / (n - 1)
    return None


def peak_concurrency(records: Sequence[RequestRecord]) -> int:
    """Most successful requests in flight at once ([send, end) intervals, ends first on ties)."""
    events: list[tuple[float, int]] = []
    for r in records:
        if r.ok and r.e2el_s is not None:
            events += [(r.sent_s, 1), (r.sent_s + r.e2el_s, -1)]
    events.sort()
    peak = cur = 0
    for _, delta in events:
        cur += delta
        peak = max(peak, cur)
    return peak


def peak_output_tokens_per_s(records: Sequence[RequestRecord]) -> float:
    """vLLM's max_output_tokens_per_s: chunks per one-second bucket, at its busiest second."""
    ok = [r for r in records if r.ok and r.ttft_s is not None]
    if not ok:
        return 0.0
    start = min(r.sent_s for r in ok)
    stamps = []
    for r in ok:
        t = r.sent_s + (r.ttft_s or 0.0)
        stamps.append(t)
        for gap in r.itl_s:
            t += gap
            stamps.append(t)
    buckets = np.bincount(np.floor(np.asarray(stamps) - start).astype(int).clip(min=0))
    return float(buckets.max())


def goodput_count(records: Sequence[RequestRecord], slo_ms: dict[str, float]) -> int:
    good = 0
    for r in records:
        if not r.ok:
            continue
        values = {"ttft": r.ttft_s or 0.0, "tpot": tpot_s(r) or 0.0, "e2el": r.e2el_s or 0.0}
        if all(values[name] <= limit / 1000.0 for name, limit in slo_ms.items()):
            good += 1
    return good


def summarize(
    records: Sequence[RequestRecord],
    duration_s: float,
    percentiles: Sequence[float] = (50, 90, 99),
    percentile_metrics: Sequence[str] = ("ttft", "tpot", "itl", "e2el"),
    goodput_slo_ms: dict[str, float] | None = None,
    ignore_eos: bool = False,
) -> dict[str, Any]:
    """The metric part of the summary JSON (vLLM keys first, then ours)."""
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    dur = duration_s if duration_s > 0 else math.nan
    total_in = sum(_input_tokens(r) for r in ok)
    total_out = sum(r.output_len or 0 for r in ok)
    series = {
        "ttft": [r.ttft_s for r in ok if r.ttft_s is not None],
        "tpot": [t for r in ok if (t := tpot_s(r)) is not None],
        "itl": [gap for r in ok for gap in r.itl_s],
        "e2el": [r.e2el_s for r in ok if r.e2el_s is not None],
        "ttft_content": [r.ttft_content_s for r in ok if r.ttft_content_s is not None],
        "client_queue_time": [r.queue_s for r in ok],
    }
    out: dict[str, Any] = {
        "duration": duration_s,
        "completed": len(ok),
        "failed": len(failed),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(ok) / dur,
        "request_goodput": (
            goodput_count(records, goodput_slo_ms) / dur if goodput_slo_ms else None
        ),
        "output_throughput": total_out / dur,
        "total_token_throughput": (total_in + total_out) / dur,
        "max_output_tokens_per_s": peak_output_tokens_per_s(records),
        "max_concurrent_requests": peak_concurrency(records),
    }
    # ttft_content is ours and always reported; the rest as selected (vLLM semantics)
    selected = list(dict.fromkeys([*percentile_metrics, "ttft_content"]))
    for name in selected:
        for stat, value in stats_ms(series[name], percentiles).items():
            out[f"{stat}_{name}_ms"] = value
    out["input_throughput"] = total_in / dur
    out["achieved_request_rate"] = achieved_rate(records)
    lags = np.asarray([r.dispatch_lag_s for r in records] or [0.0]) * 1000.0
    out["dispatch_lag_ms"] = {
        "p50": float(np.percentile(lags, 50)),
        "p99": float(np.percentile(lags, 99)),
        "max": float(np.max(lags)),
    }
    short = [r.index for r in ok if (r.output_len or 0) < r.expected_output_len]
    out["short_outputs"] = len(short) if ignore_eos else None
    out["short_output_indices"] = short[:100] if ignore_eos else None
    out["token_count_discrepancies"] = {
        "output": _discrepancy(ok, lambda r: (r.server_completion_tokens, r.client_output_tokens)),
        "prompt": _discrepancy(ok, lambda r: (r.server_prompt_tokens, r.prompt_len)),
    }
    out["errors_by_kind"] = dict(Counter(r.error_kind or "unknown" for r in failed).most_common())
    out["http_status_counts"] = {
        str(k): v for k, v in Counter(r.http_status for r in records).most_common()
    }
    return out


def achieved_rate(records: Sequence[RequestRecord]) -> float | None:
    """(N-1) / (last send - first send): the rate the client actually offered."""
    sends = sorted(r.sent_s - r.queue_s for r in records)  # arrival, before any semaphore wait
    if len(sends) < 2 or sends[-1] <= sends[0]:
        return None
    return (len(sends) - 1) / (sends[-1] - sends[0])


def _input_tokens(r: RequestRecord) -> int:
    if r.prompt_len is not None:
        return r.prompt_len
    return r.server_prompt_tokens or 0


def _discrepancy(records: Sequence[RequestRecord], pair: Any) -> dict[str, Any]:
    """How the server's token counts differ from the client tokenizer's (server - client)."""
    diffs = []
    for r in records:
        server, client = pair(r)
        if server is not None and client is not None:
            diffs.append(server - client)
    differ = [d for d in diffs if d != 0]
    return {
        "compared": len(diffs),
        "differ": len(differ),
        "mean_diff": float(np.mean(diffs)) if diffs else None,
        "max_abs_diff": max((abs(d) for d in diffs), default=None),
    }
