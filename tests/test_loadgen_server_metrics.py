"""The server's own Prometheus metrics around a point: parsing (prometheus_client's), the
mapping of each engine's names, deltas and peaks, and the validity flag they feed."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from enginebench.loadgen import server_metrics
from enginebench.loadgen.validity import server_counts_differ

# as the servers expose them (vLLM's through prometheus_client: `_total` and `_created`)
VLLM = """\
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{engine="0",model_name="m"}} {prompt}
vllm:prompt_tokens_created{{engine="0",model_name="m"}} 1.7e+09
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{{engine="0",model_name="m"}} {gen}
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{{engine="0",model_name="m"}} {prompt}
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{{engine="0",model_name="m"}} {hits}
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",model_name="m"}} {running}
vllm:num_requests_running{{engine="1",model_name="m"}} {running}
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{le="0.1"}} 3.0
vllm:time_to_first_token_seconds_count 3.0
vllm:time_to_first_token_seconds_sum 0.2
"""
LLAMACPP = """\
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total {computed}
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total {cached}
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total {gen}
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred {waiting}
"""


def test_parse_sums_labels_and_skips_histograms_and_created() -> None:
    got = server_metrics.parse(VLLM.format(prompt=100, gen=40, hits=64, running=2))
    assert got == {
        "vllm:prompt_tokens": 100.0, "vllm:generation_tokens": 40.0,
        "vllm:prefix_cache_queries": 100.0, "vllm:prefix_cache_hits": 64.0,
        "vllm:num_requests_running": 4.0,  # two engines' gauges, summed
    }  # fmt: skip


def test_summarize_deltas_peaks_and_absent_keys() -> None:
    def snap(text: str, **kw: int) -> dict[str, float]:
        return server_metrics.parse(text.format(**kw))

    before = snap(VLLM, prompt=100, gen=40, hits=0, running=0)
    during = [snap(VLLM, prompt=150, gen=50, hits=20, running=3)]
    after = snap(VLLM, prompt=300, gen=80, hits=150, running=0)
    out = server_metrics.summarize(before, after, during)
    assert out["server_prompt_tokens"] == 200 and out["server_generation_tokens"] == 40
    assert out["server_prefix_cache_hit_rate"] == pytest.approx(150 / 200)
    assert out["server_max_running"] == 6  # the peak, summed over the two label sets
    # vLLM exposes no cached-token counter here, nor preemptions: absent, not zero
    assert out["server_cached_prompt_tokens"] is None and out["server_preemptions"] is None
    # llama.cpp counts computed and cached prompt tokens apart: the prompt is their sum, and
    # its hit rate is cached over all
    lb = snap(LLAMACPP, computed=10, cached=0, gen=5, waiting=0)
    la = snap(LLAMACPP, computed=40, cached=70, gen=37, waiting=0)
    out = server_metrics.summarize(
        lb, la, [snap(LLAMACPP, computed=20, cached=9, gen=9, waiting=2)]
    )
    assert out["server_prompt_tokens"] == 100 and out["server_cached_prompt_tokens"] == 70
    assert out["server_prefix_cache_hit_rate"] == pytest.approx(0.7)
    assert out["server_generation_tokens"] == 32 and out["server_max_waiting"] == 2
    assert out["server_max_kv_cache_usage"] is None
    # no endpoint: every key None
    assert set(server_metrics.summarize(None, None, []).values()) == {None}


def test_watch_scrapes_a_server_around_a_point() -> None:
    """Before, during (peaks) and after; the last scrape waits for the counters to settle."""
    state = {"prompt": 0, "gen": 0, "running": 0, "scrapes": 0}

    async def metrics(_: web.Request) -> web.Response:
        state["scrapes"] += 1
        text = VLLM.format(prompt=state["prompt"], gen=state["gen"], hits=0,
                           running=state["running"])  # fmt: skip
        return web.Response(text=text)

    async def run() -> dict[str, object]:
        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        watch = server_metrics.Watch(f"http://127.0.0.1:{port}/metrics", {}, interval=0.05)
        await watch.start()
        state.update(prompt=64, gen=16, running=5)
        await asyncio.sleep(0.2)
        state.update(prompt=128, gen=32, running=0)
        out = await watch.stop()
        await runner.cleanup()
        return out

    out = asyncio.run(run())
    assert out["server_prompt_tokens"] == 128 and out["server_generation_tokens"] == 32
    assert out["server_max_running"] == 10 and out["server_metrics_error"] is None
    assert int(state["scrapes"]) >= 4  # before, samples, after (and the settling one)

    async def nothing_there() -> dict[str, object]:
        watch = server_metrics.Watch("http://127.0.0.1:9/metrics", {})
        await watch.start()
        return await watch.stop()

    out = asyncio.run(nothing_there())
    assert out["server_generation_tokens"] is None and "127.0.0.1:9" in str(
        out["server_metrics_error"]
    )


def test_server_count_mismatch_only_on_whole_points() -> None:
    base = {"failed": 0, "cancelled": 0, "interrupted": False, "total_input_tokens": 100,
            "total_output_tokens": 40}  # fmt: skip
    same = {**base, "server_prompt_tokens": 100.0, "server_generation_tokens": 40.0}
    assert not server_counts_differ(same)
    assert server_counts_differ({**same, "server_generation_tokens": 41.0})
    assert not server_counts_differ(base)  # no endpoint: nothing to compare
    # a cancelled (early stop) or failed request leaves tokens only the server counted
    assert not server_counts_differ({**same, "server_generation_tokens": 52.0, "cancelled": 3})
    assert not server_counts_differ({**same, "server_prompt_tokens": 120.0, "failed": 1})
