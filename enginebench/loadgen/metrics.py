"""Summary metrics from request records, defined as `vllm bench serve` defines them.

* TPOT_i = (E2EL_i - TTFT_i) / (n_out_i - 1), only for requests with n_out_i > 1;
* ITL: the gaps between chunks of every request, pooled;
* throughputs divide by the duration D (end of the last request - start of scheduling);
* total_input_tokens: per request the server's `usage.prompt_tokens` when it reported one,
  else the client's count (`prompt_len`), as current vLLM counts it; the client's own sum is
  `total_input_tokens_client` (None when no request had a client count);
* mean / median / std (population) / percentiles (numpy linear interpolation), in ms; an empty
  list reports 0 like vLLM (`np.mean(x or 0)`);
* without streaming (`stream=False`) TPOT and ITL are not measured (the whole answer arrives
  at once): their keys are None, not 0, and goodput with a TPOT SLO is None (not judgeable);
* goodput: requests meeting every SLO (ms) divided by D, with TPOT taken as 0 for one-token
  outputs; `output_goodput` (ours): those requests' output tokens divided by D;
* max_concurrent_requests: peak of a sweep over the successful requests' [send, end) intervals.

The engine's own account (ours; successful requests that reported it, else None). Counts
come from the server, except `shared_prefix_len`, which is the workload's (client side):
* engine_account: the sorted sources seen ("usage.prompt_tokens_details": vLLM with
  --enable-prompt-tokens-details, SGLang; "llama.cpp timings": llama-server's `timings`;
  "mlc usage.extra"; "tabbyapi usage times": TabbyAPI's prompt time and decode rate);
* engine_reported_requests: requests that reported a cached-token count (0 when none did);
* engine_cached_prompt_tokens: the sum of those counts (server);
* engine_cached_prompt_fraction: that sum over the same requests' prompt tokens (the server's
  `usage.prompt_tokens`, else the client's count);
* requests_with_cached_prompt_tokens: requests with a cached count > 0;
* expected_cached_prompt_tokens / _fraction (client): what an ideal prefix cache would serve:
  for a request whose prefix group (`--random-prefix-groups`) an earlier request to the same
  server already sent, its shared prefix; over the prompt tokens for the fraction;
* expected_prefix_served_fraction: of the expected tokens, the share the engine says it served
  from its cache (sum of min(cached_i, expected_i) over the requests that reported a count);
  1 minus it is the prefix the engine recomputed;
* unrequested_cached_prompt_tokens: sum of max(0, cached_i - shared_prefix_len_i): cache hits
  the workload did not ask for (e.g. a prompt row replayed at every sweep point);
  requests_with_unrequested_cache_hits: requests where that is > 0;
* mean/median_engine_prompt_ms, median_engine_decode_ms_per_token: the engine's own prompt
  time and time per generated token (llama.cpp's prompt_ms, predicted_per_token_ms);
* ttft_beyond_engine_ms: median of (client TTFT_i - engine prompt_ms_i), streaming only;
  tpot_beyond_engine_ms: median of (client TPOT_i - engine ms/token_i), over requests with
  both: what the client, HTTP and the server's work outside its own timings (front end,
  queueing, llama-server's prompt-cache save) add to the engine's own times.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from enginebench.loadgen.client import RequestRecord

# the latency percentiles every summary, table and plot shows (`--metric-percentiles` may ask
# the load generator for more; the report reads these)
PERCENTILES: tuple[int, ...] = (50, 90, 99)

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


def good_requests(
    records: Sequence[RequestRecord], slo_ms: dict[str, float]
) -> list[RequestRecord]:
    """The successful requests that meet every SLO (vLLM's goodput definition)."""
    good = []
    for r in records:
        if not r.ok:
            continue
        values = {"ttft": r.ttft_s or 0.0, "tpot": tpot_s(r) or 0.0, "e2el": r.e2el_s or 0.0}
        if all(values[name] <= limit / 1000.0 for name, limit in slo_ms.items()):
            good.append(r)
    return good


def goodput_count(records: Sequence[RequestRecord], slo_ms: dict[str, float]) -> int:
    return len(good_requests(records, slo_ms))


# Not measured without streaming: the answer arrives in one piece, so E2EL - TTFT is 0.
_STREAM_ONLY = ("tpot", "itl")


def summarize(
    records: Sequence[RequestRecord],
    duration_s: float,
    percentiles: Sequence[float] = PERCENTILES,
    percentile_metrics: Sequence[str] = ("ttft", "tpot", "itl", "e2el"),
    goodput_slo_ms: dict[str, float] | None = None,
    ignore_eos: bool = False,
    stream: bool = True,
) -> dict[str, Any]:
    """The metric part of the summary JSON (vLLM keys first, then ours)."""
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    dur = duration_s if duration_s > 0 else math.nan
    total_in = sum(_prompt_tokens(r) or 0 for r in ok)
    total_out = sum(r.output_len or 0 for r in ok)
    series = {
        "ttft": [r.ttft_s for r in ok if r.ttft_s is not None],
        "tpot": [t for r in ok if (t := tpot_s(r)) is not None],
        "itl": [gap for r in ok for gap in r.itl_s],
        "e2el": [r.e2el_s for r in ok if r.e2el_s is not None],
        "ttft_content": [r.ttft_content_s for r in ok if r.ttft_content_s is not None],
        "client_queue_time": [r.queue_s for r in ok],
    }
    goodput = output_goodput = None
    if goodput_slo_ms and (stream or "tpot" not in goodput_slo_ms):
        good = good_requests(records, goodput_slo_ms)
        goodput = len(good) / dur
        output_goodput = sum(r.output_len or 0 for r in good) / dur
    out: dict[str, Any] = {
        "duration": duration_s,
        "completed": len(ok),
        "failed": len(failed),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": len(ok) / dur,
        "request_goodput": goodput,
        "output_throughput": total_out / dur,
        "total_token_throughput": (total_in + total_out) / dur,
        "max_output_tokens_per_s": peak_output_tokens_per_s(records),
        "max_concurrent_requests": peak_concurrency(records),
    }
    # ttft_content is ours and always reported; the rest as selected (vLLM semantics)
    selected = list(dict.fromkeys([*percentile_metrics, "ttft_content"]))
    for name in selected:
        for stat, value in stats_ms(series[name], percentiles).items():
            out[f"{stat}_{name}_ms"] = None if not stream and name in _STREAM_ONLY else value
    out["input_throughput"] = total_in / dur
    out["output_goodput"] = output_goodput  # ours: output tokens/s of the requests meeting the SLO
    known = [r.prompt_len for r in ok if r.prompt_len is not None]
    out["total_input_tokens_client"] = sum(known) if known or not ok else None
    out["achieved_request_rate"] = achieved_rate(records)
    out["dispatch_lag_ms"] = dispatch_lag_ms(records)
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
    out.update(engine_account(ok, stream))
    out.update(by_turn(records, stream))
    return out


def engine_account(ok: Sequence[RequestRecord], stream: bool = True) -> dict[str, Any]:
    """The engine's own account, summed over successful requests (module docstring)."""
    sources = sorted({r.engine_account for r in ok if r.engine_account is not None})
    reported = [r for r in ok if r.engine_cached_tokens is not None]
    cached = [r.engine_cached_tokens or 0 for r in reported]
    unrequested = [max(0, c - r.shared_prefix_len) for c, r in zip(cached, reported, strict=True)]
    # the fraction over requests whose prompt length is known (server's count first)
    pairs = [(c, p) for c, r in zip(cached, reported, strict=True) if (p := _prompt_tokens(r))]
    # the workload's expectation (client side): what an ideal prefix cache serves, and how much
    # of it the engine says it served, per request (min: a BOS or a block more is no credit)
    grouped = [r for r in ok if r.expected_cached_len is not None]
    expected = sum(r.expected_cached_len or 0 for r in grouped)
    prompt_tokens = sum(p for r in grouped if (p := _prompt_tokens(r)))
    owed = sum(r.expected_cached_len or 0 for r in reported)
    served = sum(min(c, r.expected_cached_len or 0) for c, r in zip(cached, reported, strict=True))
    prompt_ms = [r.engine_prompt_ms for r in ok if r.engine_prompt_ms is not None]
    decode_ms = [
        r.engine_decode_ms_per_token for r in ok if r.engine_decode_ms_per_token is not None
    ]
    ttft_gap = [
        r.ttft_s * 1000.0 - r.engine_prompt_ms
        for r in ok
        if stream and r.ttft_s is not None and r.engine_prompt_ms is not None
    ]
    tpot_gap = [
        t * 1000.0 - r.engine_decode_ms_per_token
        for r in ok
        if stream and r.engine_decode_ms_per_token is not None and (t := tpot_s(r)) is not None
    ]
    return {
        "engine_account": sources or None,
        "engine_reported_requests": len(reported),
        "engine_cached_prompt_tokens": sum(cached) if reported else None,
        "engine_cached_prompt_fraction": (
            sum(c for c, _ in pairs) / sum(p for _, p in pairs) if pairs else None
        ),
        "requests_with_cached_prompt_tokens": sum(c > 0 for c in cached) if reported else None,
        "unrequested_cached_prompt_tokens": sum(unrequested) if reported else None,
        "requests_with_unrequested_cache_hits": (
            sum(u > 0 for u in unrequested) if reported else None
        ),
        "expected_cached_prompt_tokens": expected if grouped else None,
        "expected_cached_prompt_fraction": expected / prompt_tokens if prompt_tokens else None,
        "expected_prefix_served_fraction": served / owed if owed else None,
        "mean_engine_prompt_ms": float(np.mean(prompt_ms)) if prompt_ms else None,
        "median_engine_prompt_ms": float(np.median(prompt_ms)) if prompt_ms else None,
        "median_engine_decode_ms_per_token": float(np.median(decode_ms)) if decode_ms else None,
        "ttft_beyond_engine_ms": float(np.median(ttft_gap)) if ttft_gap else None,
        "tpot_beyond_engine_ms": float(np.median(tpot_gap)) if tpot_gap else None,
    }


def by_turn(records: Sequence[RequestRecord], stream: bool = True) -> dict[str, Any]:
    """Multi-turn sessions, per turn (1, 2, ...): its requests, mean prompt tokens, P50/P99
    TTFT, and how much of the history it was sent the engine served from its cache (the
    previous prompt: `expected_prefix_served_fraction`; 1 minus it, what it recomputed). With
    the first and last turn's P50 TTFT on their own. {} without sessions."""
    ok = [r for r in records if r.ok and r.turn is not None]
    if not ok:
        return {}
    rows = []
    for turn in sorted({r.turn for r in ok if r.turn is not None}):
        these = [r for r in ok if r.turn == turn]
        ttft = stats_ms(
            [r.ttft_s for r in these if r.ttft_s is not None] if stream else [], [50, 99]
        )
        prompts = [p for r in these if (p := _prompt_tokens(r)) is not None]
        account = engine_account(these, stream)
        rows.append(
            {
                "turn": turn,
                "requests": len(these),
                "mean_prompt_tokens": float(np.mean(prompts)) if prompts else None,
                "p50_ttft_ms": ttft.get("p50") if stream else None,
                "p99_ttft_ms": ttft.get("p99") if stream else None,
                **{k: account[k] for k in _TURN_ACCOUNT},
            }
        )
    return {
        "session_turns": len(rows),
        "turns": rows,
        "p50_ttft_first_turn_ms": rows[0]["p50_ttft_ms"],
        "p50_ttft_last_turn_ms": rows[-1]["p50_ttft_ms"],
    }


def by_offered_rate(
    records: Sequence[RequestRecord], rates: Sequence[float], steps: int = 5
) -> list[dict[str, Any]]:
    """A ramp's requests in `steps` equal parts of its offered rates (`rates[i]`: request i's):
    each part's rate range, requests, completed, P50/P99 TTFT and P50 TPOT."""
    if not records:
        return []
    low, high = min(rates), max(rates)
    width = (high - low) / steps or 1.0
    out = []
    for k in range(steps):
        lo, hi = low + k * width, low + (k + 1) * width
        these = [
            r for r, x in zip(records, rates, strict=True)
            if lo <= x < hi or (k == steps - 1 and x == hi)
        ]  # fmt: skip
        ok = [r for r in these if r.ok]
        ttft = [r.ttft_s for r in ok if r.ttft_s is not None]
        tpot = [t for r in ok if (t := tpot_s(r)) is not None]
        out.append(
            {
                "from_rps": lo, "to_rps": hi, "requests": len(these), "completed": len(ok),
                "p50_ttft_ms": stats_ms(ttft, [50])["p50"] if ttft else None,
                "p99_ttft_ms": stats_ms(ttft, [99])["p99"] if ttft else None,
                "p50_tpot_ms": stats_ms(tpot, [50])["p50"] if tpot else None,
            }
        )  # fmt: skip
    return out


_TURN_ACCOUNT = (
    "expected_cached_prompt_fraction",
    "engine_cached_prompt_fraction",
    "expected_prefix_served_fraction",
)


def dispatch_lag_ms(records: Sequence[RequestRecord]) -> dict[str, float]:
    """P50, P99 and max of the client's lateness (sent - scheduled - queue), ms."""
    lags = np.asarray([r.dispatch_lag_s for r in records] or [0.0]) * 1000.0
    return {
        "p50": float(np.percentile(lags, 50)),
        "p99": float(np.percentile(lags, 99)),
        "max": float(np.max(lags)),
    }


def achieved_rate(records: Sequence[RequestRecord]) -> float | None:
    """(N-1) / (last send - first send): the rate the client actually offered."""
    sends = sorted(r.sent_s - r.queue_s for r in records)  # arrival, before any semaphore wait
    if len(sends) < 2 or sends[-1] <= sends[0]:
        return None
    return (len(sends) - 1) / (sends[-1] - sends[0])


def _prompt_tokens(r: RequestRecord) -> int | None:
    """vLLM: the server's usage.prompt_tokens when reported, else the client's count."""
    return r.server_prompt_tokens if r.server_prompt_tokens is not None else r.prompt_len


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
