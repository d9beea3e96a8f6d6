"""The server's own Prometheus metrics over a point (`bench --server-metrics PATH`).

Scraped once before the measured requests and once after (counters: the deltas over the point;
the last scrape is repeated until the counters stop moving, as a server may count a finished
request a moment later), and every `interval` seconds in between (gauges: the highest value
seen). Parsed with `prometheus_client`'s text parser; each engine's names map to one summary key
below (samples of one name summed over their labels). A key is absent (None), not zero, when
the engine exposes no such metric or no endpoint answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

# summary key -> per engine, the counters (prometheus_client's family names: no `_total`) whose
# sum it is: the first alternative the server exposes in full
COUNTERS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    # every prompt token sent (llama.cpp counts the computed and the cached ones apart)
    "server_prompt_tokens": (
        ("vllm:prompt_tokens",),
        ("llamacpp:prompt_tokens", "llamacpp:prompt_tokens_cached"),
    ),
    "server_cached_prompt_tokens": (
        ("vllm:prompt_tokens_cached",),
        ("llamacpp:prompt_tokens_cached",),
    ),
    "server_generation_tokens": (("vllm:generation_tokens",), ("llamacpp:tokens_predicted",)),
    "server_prefix_cache_queries": (("vllm:prefix_cache_queries",),),
    "server_prefix_cache_hits": (("vllm:prefix_cache_hits",),),
    "server_preemptions": (("vllm:num_preemptions",),),
}
# summary key (its highest value during the point) -> the engines' gauges
GAUGES: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "server_max_kv_cache_usage": (("vllm:kv_cache_usage_perc",),),
    "server_max_running": (("vllm:num_requests_running",), ("llamacpp:requests_processing",)),
    "server_max_waiting": (("vllm:num_requests_waiting",), ("llamacpp:requests_deferred",)),
}
KEYS = (*COUNTERS, "server_prefix_cache_hit_rate", *GAUGES)
SETTLE_S = 2.0  # the longest the last scrape waits for the counters to stop moving


def _wanted() -> frozenset[str]:
    names = {n for table in (COUNTERS, GAUGES) for alts in table.values() for a in alts for n in a}
    return frozenset(names | {f"{n}_total" for n in names})


WANTED = _wanted()  # the sample (and TYPE line) names the keys read


def relevant(text: str) -> str:
    """The lines of the metrics the keys read (vLLM's page is ~50 KB of histograms: parsed
    whole it costs the load generator's event loop 10-100 ms a scrape, filtered ~1 ms)."""
    keep = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE" and parts[2] in WANTED:
                keep.append(line)
        elif line.split("{", 1)[0].split(" ", 1)[0] in WANTED:
            keep.append(line)
    return "\n".join(keep) + "\n"


def parse(text: str) -> dict[str, float]:
    """{family name: its samples summed over their labels} for the counters and gauges the
    keys read."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(relevant(text)):
        if family.type not in ("counter", "gauge"):
            continue
        names = {family.name, f"{family.name}_total"}
        values = [s.value for s in family.samples if s.name in names]
        if values:
            out[family.name] = float(sum(values))
    return out


def _pick(snapshot: Mapping[str, float], alternatives: tuple[tuple[str, ...], ...]) -> float | None:
    for names in alternatives:
        if all(n in snapshot for n in names):
            return sum(snapshot[n] for n in names)
    return None


def summarize(
    before: Mapping[str, float] | None,
    after: Mapping[str, float] | None,
    samples: Sequence[Mapping[str, float]],
) -> dict[str, Any]:
    """The summary's server_* keys from the scrapes (every key None without both scrapes)."""
    out: dict[str, Any] = dict.fromkeys(KEYS)
    if before is None or after is None:
        return out
    for key, names in COUNTERS.items():
        start, end = _pick(before, names), _pick(after, names)
        if start is not None and end is not None:
            out[key] = end - start
    # prompt tokens served from the cache over those looked up (vLLM), else over all (llama.cpp)
    queries, hits = out["server_prefix_cache_queries"], out["server_prefix_cache_hits"]
    if queries is None:
        queries, hits = out["server_prompt_tokens"], out["server_cached_prompt_tokens"]
    out["server_prefix_cache_hit_rate"] = hits / queries if queries and hits is not None else None
    for key, names in GAUGES.items():
        seen = [v for s in (before, *samples, after) if (v := _pick(s, names)) is not None]
        out[key] = max(seen) if seen else None
    return out


class Watch:
    """Scrapes `url` around a point: `start()` before it, `stop()` after it. Its own HTTP
    session: the benchmark's caps its connections at the point's concurrency, and a scrape must
    neither wait for nor take one of them."""

    def __init__(self, url: str, headers: Mapping[str, str], interval: float = 1.0) -> None:
        self.url, self.headers, self.interval = url, dict(headers), interval
        self.session: aiohttp.ClientSession | None = None
        self.before: dict[str, float] | None = None
        self.samples: list[dict[str, float]] = []
        self.error: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def scrape(self) -> dict[str, float] | None:
        assert self.session is not None
        try:
            async with self.session.get(self.url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                if r.status != 200:
                    self.error = f"{self.url}: HTTP {r.status}"
                    return None
                return parse(await r.text())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.error = f"{self.url}: {exc!r}"
            return None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(headers=self.headers)
        self.before = await self.scrape()
        if self.before is not None:
            self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if (snapshot := await self.scrape()) is not None:
                self.samples.append(snapshot)

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        after = await self.scrape() if self.before is not None else None
        deadline = time.monotonic() + SETTLE_S
        while after is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            again = await self.scrape()
            if again is None or _counters(again) == _counters(after):
                break
            after = again
        if self.session is not None:
            await self.session.close()
        out = summarize(self.before, after, self.samples)
        out["server_metrics_error"] = self.error if after is None else None
        return out


def _counters(snapshot: Mapping[str, float]) -> list[float | None]:
    return [_pick(snapshot, names) for names in COUNTERS.values()]
