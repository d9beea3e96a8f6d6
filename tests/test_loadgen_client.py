"""One request against a scripted raw server: what the client records for each stream shape."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from enginebench.loadgen.client import (
    Endpoint,
    RequestRecord,
    build_body,
    exact_length_fields,
    send,
)
from enginebench.loadgen.metrics import summarize

Step = bytes | float  # bytes are written as one chunk, a float sleeps that long


def ev(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def chat(content: str | None = None, role: bool = False, **extra: Any) -> bytes:
    delta: dict[str, Any] = {"role": "assistant", "content": ""} if role else {"content": content}
    return ev({"choices": [{"index": 0, "delta": delta}], **extra})


def comp(text: str, **extra: Any) -> bytes:
    return ev({"choices": [{"index": 0, "text": text}], **extra})


DONE = b"data: [DONE]\n\n"
USAGE = ev({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}})


async def run_script(
    steps: Sequence[Step],
    chat_ep: bool = False,
    status: int = 200,
    cut: bool = False,
    stream: bool = True,
) -> RequestRecord:
    async def handler(request: web.Request) -> web.StreamResponse:
        if status != 200 or not stream:
            body = b"".join(s for s in steps if isinstance(s, bytes))
            return web.Response(status=status, body=body, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for step in steps:
            if isinstance(step, float):
                await asyncio.sleep(step)
            else:
                await resp.write(step)
        if cut:
            assert request.transport is not None
            request.transport.close()
            return resp
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    path = "/v1/chat/completions" if chat_ep else "/v1/completions"
    ep = Endpoint(url=f"http://127.0.0.1:{port}{path}", model="m", chat=chat_ep, stream=stream)
    rec = RequestRecord(0, 3, 5)
    try:
        async with aiohttp.ClientSession() as session:
            await send(session, ep, build_body(ep, "hi", 3), rec, 0.0)
    finally:
        await runner.cleanup()
    return rec


def run(*args: Any, **kw: Any) -> RequestRecord:
    return asyncio.run(run_script(*args, **kw))


def test_completions_stream_with_usage_chunk() -> None:
    rec = run([comp("a"), comp("b"), comp("c"), USAGE, DONE])
    assert rec.ok, rec.error
    assert rec.text == "abc"
    assert rec.server_completion_tokens == 3 and rec.server_prompt_tokens == 5
    assert len(rec.itl_s) == 2  # three chunks with choices
    assert rec.ttft_s is not None and rec.e2el_s is not None and rec.e2el_s >= rec.ttft_s


def test_role_only_first_chunk_counts_for_ttft_not_ttft_content() -> None:
    rec = run([chat(role=True), 0.08, chat("x"), chat("y"), USAGE, DONE], chat_ep=True)
    assert rec.ok, rec.error
    assert rec.ttft_s is not None and rec.ttft_content_s is not None
    assert rec.ttft_s < 0.06 <= rec.ttft_content_s  # vLLM's TTFT reads low on chat
    assert rec.text == "xy" and len(rec.itl_s) == 2


def test_usage_in_a_chunk_that_still_has_choices() -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 2}
    rec = run([comp("a"), comp("b", usage=usage), DONE])
    assert rec.ok and rec.server_completion_tokens == 2 and rec.server_prompt_tokens == 4
    assert len(rec.itl_s) == 1


def test_e2el_ends_at_the_last_chunk_with_choices() -> None:
    rec = run([comp("a"), comp("b"), 0.1, USAGE, DONE])
    assert rec.ok and rec.e2el_s is not None and rec.e2el_s < 0.08


def test_keepalive_crlf_and_no_done_still_succeed() -> None:
    steps = [b": ping\r\n\r\n", comp("a").replace(b"\n", b"\r\n"), b"data:" + comp("b")[6:]]
    rec = run(steps)
    assert rec.ok and rec.text == "ab"


def test_stream_cut_midway_is_a_failed_request() -> None:
    rec = run([comp("a"), comp("b")], cut=True)
    assert rec.status == "failed" and rec.error_kind == "stream_cut", rec.error


def test_malformed_json_is_a_failed_request() -> None:
    rec = run([comp("a"), b'data: {"choices": [{"text": \n\n', comp("b"), DONE])
    assert rec.status == "failed" and rec.error_kind == "malformed_json"
    assert rec.error and "malformed JSON" in rec.error


def test_stream_without_any_choices_fails() -> None:
    rec = run([USAGE, DONE])
    assert rec.status == "failed" and rec.error_kind == "no_tokens"


def test_error_event_in_stream_fails() -> None:
    rec = run([comp("a"), ev({"error": {"message": "out of memory"}}), DONE])
    assert rec.status == "failed" and rec.error_kind == "stream_error"
    assert rec.error and "out of memory" in rec.error


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_http_errors(status: int) -> None:
    rec = run([b'{"error": "nope"}'], status=status)
    assert rec.status == "failed" and rec.http_status == status
    assert rec.error_kind == f"http_{status}" and rec.error and "nope" in rec.error


def test_non_streamed_response() -> None:
    body = {"choices": [{"text": "abc"}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}
    rec = run([json.dumps(body).encode()], stream=False)
    assert rec.ok and rec.ttft_s == rec.e2el_s and rec.text == "abc" and rec.itl_s == []
    assert rec.server_completion_tokens == 3


def test_connection_refused_is_a_failed_request() -> None:
    async def go() -> RequestRecord:
        ep = Endpoint(url="http://127.0.0.1:9/v1/completions", model="m")
        rec = RequestRecord(0, 3, 5)
        async with aiohttp.ClientSession() as session:
            await send(session, ep, build_body(ep, "hi", 3), rec, 0.0)
        return rec

    rec = asyncio.run(go())
    assert rec.status == "failed" and rec.error_kind == "connect"


def test_request_bodies_per_dialect() -> None:
    ep = Endpoint(url="u", model="m", ignore_eos=True, ignore_eos_style="generation_config")
    body = json.loads(build_body(ep, "p", 7))
    assert body["max_tokens"] == 7 and body["prompt"] == "p" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert json.loads(body["generation_config"]) == {"min_new_tokens": 7, "max_new_tokens": 7}
    assert exact_length_fields("ignore_eos", 7) == {"ignore_eos": True}
    assert exact_length_fields("min_tokens", 7) == {"min_tokens": 7}
    chat_ep = Endpoint(url="u", model="m", chat=True, stream=False)
    body = json.loads(build_body(chat_ep, "p", 7))
    assert body["messages"] == [{"role": "user", "content": "p"}]
    assert body["max_completion_tokens"] == 7 and "stream_options" not in body
    assert "ignore_eos" not in body


_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.mark.parametrize("when", ["before_answer", "after_headers", "mid_stream", "rst"])
def test_connection_lost_mid_request_fails_and_is_not_resent(when: str) -> None:
    """The server drops the connection at some point of its answer: the request is failed,
    never resent (a resend hides the failure and restarts the clock); the server sees it once."""
    seen = {"connections": 0, "requests": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            writer.close()
            return
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        seen["requests"] += 1
        if when != "before_answer":
            writer.write(_SSE_HEAD)
        if when in ("mid_stream", "rst"):
            writer.write(_http_chunk(comp("a")))
        await writer.drain()
        await asyncio.sleep(0.05)
        if when == "rst":  # SO_LINGER 0: close with a TCP reset, not a FIN
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    async def go() -> RequestRecord:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ep = Endpoint(url=f"http://127.0.0.1:{port}/v1/completions", model="m")
        rec = RequestRecord(0, 1, 1)
        async with server, aiohttp.ClientSession() as session:
            await send(session, ep, build_body(ep, "hi", 1), rec, 0.0)
            await asyncio.sleep(0.1)  # a resend would have arrived by now
        return rec

    rec = asyncio.run(go())
    assert rec.status == "failed", rec
    assert rec.error_kind in ("disconnected", "stream_cut", "client_error"), rec.error
    assert seen == {"connections": 1, "requests": 1}
    assert "retried" not in rec.to_row()


# llama-server's last chunk: an empty-delta choice with finish_reason, usage and timings
LLAMACPP_TIMINGS = {
    "cache_n": 120,
    "prompt_n": 8,
    "prompt_ms": 4.5,
    "prompt_per_token_ms": 0.5625,
    "prompt_per_second": 1777.8,
    "predicted_n": 3,
    "predicted_ms": 7.5,
    "predicted_per_token_ms": 2.5,
    "predicted_per_second": 400.0,
}
LLAMACPP_LAST = ev(
    {
        "choices": [{"index": 0, "text": "", "finish_reason": "length"}],
        "usage": {
            "prompt_tokens": 128,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 119},  # timings' cache_n wins
        },
        "timings": LLAMACPP_TIMINGS,
    }
)
# vLLM with --enable-prompt-tokens-details (and SGLang): the trailing usage-only chunk
VLLM_USAGE = ev(
    {
        "choices": [],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 3,
            "total_tokens": 8,
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    }
)


def test_llamacpp_timings_are_the_engines_own_account() -> None:
    rec = run([comp("a"), comp("b"), comp("c"), LLAMACPP_LAST, DONE])
    assert rec.ok, rec.error
    assert rec.server_prompt_tokens == 128 and rec.server_completion_tokens == 3
    assert rec.engine_account == "llama.cpp timings"
    assert rec.engine_cached_tokens == 120 and rec.engine_prompt_n == 8
    assert rec.engine_prompt_ms == 4.5 and rec.engine_predicted_n == 3
    assert rec.engine_decode_ms_per_token == 2.5
    row = rec.to_row()
    assert row["engine_cached_tokens"] == 120 and row["engine_account"] == "llama.cpp timings"
    assert row["shared_prefix_len"] == 0 and row["engine_decode_ms_per_token"] == 2.5


def test_usage_prompt_tokens_details_cached_tokens() -> None:
    rec = run([chat(role=True), chat("x"), chat("y"), VLLM_USAGE, DONE], chat_ep=True)
    assert rec.ok, rec.error
    assert rec.engine_account == "usage.prompt_tokens_details"
    assert rec.engine_cached_tokens == 4
    assert rec.engine_prompt_ms is None and rec.engine_decode_ms_per_token is None


# MLC-LLM's trailing usage chunk (its `usage.extra`, as `mlc_llm serve` sent it for a prompt
# whose first 7 tokens were in its prefix cache)
MLC_USAGE = ev(
    {
        "choices": [],
        "usage": {
            "prompt_tokens": 8, "completion_tokens": 8, "total_tokens": 16,
            "extra": {
                "prompt_tokens": 8, "completion_tokens": 8, "prefill_tokens": 1,
                "decode_tokens": 7, "jump_forward_tokens": 0,
                "prefill_tokens_per_s": 132.9, "decode_tokens_per_s": 125.0,
                "end_to_end_latency_s": 0.0589, "ttft_s": 0.0075,
                "inter_token_latency_s": 0.00736,
            },
        },
    }
)  # fmt: skip


# TabbyAPI's chunks (exllamav2 backend): usage in every chunk, its times once the request ends
TABBY_FIRST = ev(
    {
        "choices": [{"index": 0, "text": "a", "finish_reason": None}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                  "prompt_time": None, "completion_time": None},
    }
)  # fmt: skip
TABBY_LAST = ev(
    {
        "choices": [{"index": 0, "text": "", "finish_reason": "length"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 4, "total_tokens": 12,
                  "prompt_time": 0.01, "prompt_tokens_per_sec": 800.0, "completion_time": 0.02,
                  "completion_tokens_per_sec": 200.0, "total_time": 0.03},
    }
)  # fmt: skip


def test_tabbyapi_usage_times_are_the_engines_own_account() -> None:
    rec = run([TABBY_FIRST, TABBY_LAST, DONE])
    assert rec.ok, rec.error
    assert rec.engine_account == "tabbyapi usage times" and rec.engine_cached_tokens is None
    assert rec.engine_prompt_ms == pytest.approx(10.0) and rec.engine_prompt_n == 8
    # from its tokens per second (unrounded), not completion_time (rounded to 10 ms)
    assert rec.engine_decode_ms_per_token == pytest.approx(5.0) and rec.engine_predicted_n == 4
    assert rec.server_completion_tokens == 4


def test_mlc_usage_extra_is_the_engines_own_account() -> None:
    rec = run([comp("a"), comp("b"), MLC_USAGE, DONE])
    assert rec.ok, rec.error
    assert rec.engine_account == "mlc usage.extra"
    # prefilled 1 of 8 prompt tokens: 7 came from its prefix cache
    assert rec.engine_cached_tokens == 7 and rec.engine_prompt_n == 1
    assert rec.engine_prompt_ms == pytest.approx(7.5) and rec.engine_predicted_n == 7
    assert rec.engine_decode_ms_per_token == pytest.approx(8.0)  # 1000 / 125 tok/s


def test_timings_win_whichever_chunk_comes_first() -> None:
    timings_first = ev({"choices": [], "timings": LLAMACPP_TIMINGS})
    rec = run([comp("a"), timings_first, VLLM_USAGE, DONE])
    assert rec.ok and rec.engine_account == "llama.cpp timings"
    assert rec.engine_cached_tokens == 120 and rec.engine_prompt_ms == 4.5


def test_no_engine_account_without_details_or_timings() -> None:
    rec = run([comp("a"), USAGE, DONE])
    assert rec.ok and rec.engine_account is None and rec.engine_cached_tokens is None
    row = rec.to_row()
    assert row["engine_account"] is None and row["engine_prompt_ms"] is None


def test_non_streamed_response_with_timings_and_details() -> None:
    body = {
        "choices": [{"text": "abc"}],
        "usage": {
            "prompt_tokens": 128,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 64},
        },
        "timings": LLAMACPP_TIMINGS,
    }
    rec = run([json.dumps(body).encode()], stream=False)
    assert rec.ok and rec.engine_account == "llama.cpp timings"
    assert rec.engine_cached_tokens == 120 and rec.engine_prompt_n == 8


@pytest.mark.parametrize(
    "extra",
    [
        {"timings": "fast"},
        {"timings": {"cache_n": "many", "prompt_ms": "slow"}},
        {"timings": {"cache_n": True}},
        {"usage": {"completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": "4"}}},
        {"usage": {"completion_tokens": 3, "prompt_tokens_details": None}},
        {"timings": {"predicted_per_token_ms": float("nan")}},
    ],
)
def test_odd_engine_accounts_are_ignored(extra: dict[str, Any]) -> None:
    rec = run([comp("a", **extra), DONE])
    assert rec.ok, rec.error
    assert rec.engine_account is None and rec.engine_cached_tokens is None
    assert rec.engine_decode_ms_per_token is None


def test_engine_account_feeds_the_summary() -> None:
    """A llama-server-like run and a vLLM-like run through the client, then summarize."""
    llama = run([comp("a"), 0.02, comp("b"), 0.02, comp("c"), LLAMACPP_LAST, DONE])
    vllm = run([comp("a"), comp("b"), comp("c"), VLLM_USAGE, DONE])
    for r in (llama, vllm):
        assert r.ok, r.error
        r.output_len = r.server_completion_tokens
    llama.shared_prefix_len = 100  # asked for 100 shared tokens; the engine reused 120
    s = summarize([llama, vllm], 1.0)
    assert s["engine_account"] == ["llama.cpp timings", "usage.prompt_tokens_details"]
    assert s["engine_reported_requests"] == 2
    assert s["engine_cached_prompt_tokens"] == 124
    assert s["engine_cached_prompt_fraction"] == pytest.approx(124 / (128 + 5))
    assert s["requests_with_cached_prompt_tokens"] == 2
    assert s["unrequested_cached_prompt_tokens"] == 20 + 4
    assert s["requests_with_unrequested_cache_hits"] == 2
    assert s["mean_engine_prompt_ms"] == 4.5 and s["median_engine_prompt_ms"] == 4.5
    assert s["median_engine_decode_ms_per_token"] == 2.5
    assert llama.ttft_s is not None and llama.e2el_s is not None
    assert s["ttft_beyond_engine_ms"] == pytest.approx(llama.ttft_s * 1000 - 4.5)
    tpot_ms = (llama.e2el_s - llama.ttft_s) / 2 * 1000  # the empty last chunk has choices
    assert s["tpot_beyond_engine_ms"] == pytest.approx(tpot_ms - 2.5)
    # input tokens: the server's usage.prompt_tokens; the client's count kept apart
    assert s["total_input_tokens"] == 128 + 5 and s["total_input_tokens_client"] == 5 + 5


@pytest.mark.parametrize(
    "event",
    [
        ev({"choices": ["not an object"]}),
        ev({"choices": {"text": "x"}}),
        ev([1, 2]),
        ev({"choices": [{"text": "a"}], "usage": {"completion_tokens": "many"}}),
    ],
)
def test_odd_event_shapes_fail_or_pass_but_never_crash(event: bytes) -> None:
    rec = run([event, DONE])
    assert rec.status in ("ok", "failed")
    if rec.ok:
        assert rec.server_completion_tokens is None  # a non-integer count is not trusted
    else:
        assert rec.error_kind == "malformed_json"
