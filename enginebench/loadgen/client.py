"""One request over aiohttp -> `RequestRecord`, timed as `vllm bench serve` times it.

TTFT is the first SSE data message whose `choices` is non-empty (a chat server's role-only
first chunk counts, as in vLLM); `ttft_content` is the first one carrying text. E2EL ends at
the last message with choices (the trailing usage-only chunk carries no token). Usage is read
from any chunk, with or without choices.

The engine's own account of a request, when the server reports one, is kept beside the
client's measurement: `usage.prompt_tokens_details.cached_tokens` (vLLM with
--enable-prompt-tokens-details, SGLang), llama-server's `timings` object (cache_n,
prompt_n, prompt_ms, predicted_n, predicted_per_token_ms), and MLC-LLM's `usage.extra`
(prefill_tokens: the prompt tokens it prefilled, the rest came from its prefix cache;
ttft_s: from the request's arrival in the engine to the end of its prefill; decode_tokens and
decode_tokens_per_s), and TabbyAPI's usage (prompt_time: its prompt processing, seconds;
completion_tokens_per_sec; no cached-token count). Where timings and usage
details both come, timings win.

A request is sent once: a connection reset or closed mid-request is a failed request, never
resent (a resend would hide a server failure and restart the request's clock).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from enginebench.loadgen.sse import SSEParser

IGNORE_EOS_STYLES = ("ignore_eos", "min_tokens", "generation_config")
ACCOUNT_USAGE_DETAILS = "usage.prompt_tokens_details"
ACCOUNT_LLAMACPP_TIMINGS = "llama.cpp timings"
ACCOUNT_MLC_USAGE_EXTRA = "mlc usage.extra"
ACCOUNT_TABBY_USAGE_TIMES = "tabbyapi usage times"


@dataclass(slots=True)
class RequestRecord:
    """One measured request; times are seconds, `*_s` offsets from the start of scheduling."""

    index: int
    expected_output_len: int
    prompt_len: int | None
    scheduled_s: float = 0.0  # when the arrival process asked for it
    sent_s: float = 0.0  # when the POST started (after any client-side queueing)
    queue_s: float = 0.0  # time waiting behind --max-concurrency (not part of TTFT)
    dispatch_lag_s: float = 0.0  # sent - scheduled - queue: the client's own lateness
    ttft_s: float | None = None
    ttft_content_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    e2el_s: float | None = None
    end_s: float = 0.0  # when the request finished (success or failure)
    output_len: int | None = None  # the count used for metrics (server usage, else client)
    server_completion_tokens: int | None = None
    server_prompt_tokens: int | None = None
    client_output_tokens: int | None = None
    status: str = "pending"  # ok | failed
    http_status: int | None = None
    error: str | None = None
    error_kind: str | None = None
    # the engine's own account (None where the server reports nothing; see the module doc)
    engine_cached_tokens: int | None = None  # prompt tokens served from the engine's cache
    engine_prompt_n: int | None = None  # prompt tokens the engine evaluated (llama.cpp)
    engine_prompt_ms: float | None = None
    engine_predicted_n: int | None = None
    engine_decode_ms_per_token: float | None = None
    engine_account: str | None = None  # where they came from: an ACCOUNT_* name
    shared_prefix_len: int = 0  # prompt tokens the workload shares on purpose (set by the runner)
    # of those, what an ideal prefix cache serves (datasets.expected_cached; None: no group)
    expected_cached_len: int | None = None
    session: int | None = None  # a multi-turn session's request: its session and turn
    turn: int | None = None
    text: str = ""  # generated text (not written per request; used for client token counts)
    # when the server last sent anything for it (perf_counter; the stall watch reads it)
    heard: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def fail(self, kind: str, message: str) -> None:
        self.status, self.error_kind, self.error = "failed", kind, message

    def to_row(self) -> dict[str, Any]:
        """The per-request JSONL row (ARCHITECTURE.md)."""
        return {
            "index": self.index,
            "scheduled_s": self.scheduled_s,
            "sent_s": self.sent_s,
            "queue_s": self.queue_s,
            "dispatch_lag_s": self.dispatch_lag_s,
            "ttft_s": self.ttft_s,
            "ttft_content_s": self.ttft_content_s,
            "itl_s": self.itl_s,
            "e2el_s": self.e2el_s,
            "prompt_len": self.prompt_len,
            "output_len": self.output_len,
            "server_completion_tokens": self.server_completion_tokens,
            "server_prompt_tokens": self.server_prompt_tokens,
            "client_output_tokens": self.client_output_tokens,
            "expected_output_len": self.expected_output_len,
            "status": self.status,
            "http_status": self.http_status,
            "error": self.error,
            "error_kind": self.error_kind,
            "engine_cached_tokens": self.engine_cached_tokens,
            "engine_prompt_n": self.engine_prompt_n,
            "engine_prompt_ms": self.engine_prompt_ms,
            "engine_predicted_n": self.engine_predicted_n,
            "engine_decode_ms_per_token": self.engine_decode_ms_per_token,
            "engine_account": self.engine_account,
            "shared_prefix_len": self.shared_prefix_len,
            "expected_cached_len": self.expected_cached_len,
            "session": self.session,
            "turn": self.turn,
        }


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What every request of a run shares."""

    url: str
    model: str
    chat: bool = False
    stream: bool = True
    ignore_eos: bool = False
    ignore_eos_style: str = "ignore_eos"
    headers: dict[str, str] = field(default_factory=dict)  # per request, on top of the session's
    extra_body: dict[str, Any] = field(default_factory=dict)


def build_body(ep: Endpoint, prompt: str | list[dict[str, str]], output_len: int) -> bytes:
    """The JSON request body (built before the run: the hot path only sends bytes); `prompt`
    the text, or a chat's messages (a multi-turn session's, on a chat endpoint)."""
    body: dict[str, Any] = {"model": ep.model, "max_tokens": output_len, "stream": ep.stream}
    if ep.chat:
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        body["messages"] = messages
        body["max_completion_tokens"] = output_len
    else:
        body["prompt"] = prompt
    if ep.stream:
        body["stream_options"] = {"include_usage": True}
    if ep.ignore_eos:
        body.update(exact_length_fields(ep.ignore_eos_style, output_len))
    body.update(ep.extra_body)
    return json.dumps(body, ensure_ascii=False).encode()


def exact_length_fields(style: str, output_len: int) -> dict[str, Any]:
    """Request fields that pin the output length, in each server family's dialect."""
    if style == "ignore_eos":
        return {"ignore_eos": True}
    if style == "min_tokens":
        return {"min_tokens": output_len}
    if style == "generation_config":
        # a JSON *string*: servers that reject unknown top-level fields take this one
        cfg = {"min_new_tokens": output_len, "max_new_tokens": output_len}
        return {"generation_config": json.dumps(cfg)}
    raise ValueError(f"unknown ignore-eos style {style!r}; known: {', '.join(IGNORE_EOS_STYLES)}")


@functools.lru_cache(maxsize=16)
def _url(url: str) -> URL:
    return URL(url)  # parsed once per run, not once per request


class _StreamError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


async def send(
    session: aiohttp.ClientSession, ep: Endpoint, body: bytes, rec: RequestRecord, t0: float
) -> None:
    """POST `body` once, fill `rec` (never raises except on cancellation)."""
    st = time.perf_counter()
    rec.sent_s, rec.heard = st - t0, st
    try:
        await _attempt(session, ep, body, rec, st)
    except asyncio.CancelledError:
        rec.fail("cancelled", "cancelled before completion")
        raise
    except Exception as exc:  # anything a broken server provokes is a failed request
        _record_error(rec, exc)
    rec.end_s = time.perf_counter() - t0
    if rec.status == "pending":
        rec.status = "ok"


async def _attempt(
    session: aiohttp.ClientSession, ep: Endpoint, body: bytes, rec: RequestRecord, st: float
) -> None:
    async with session.post(_url(ep.url), data=body, headers=ep.headers or None) as resp:
        rec.http_status, rec.heard = resp.status, time.perf_counter()
        if resp.status != 200:
            detail = (await resp.text(errors="replace")).strip().replace("\n", " ")
            rec.fail(f"http_{resp.status}", f"HTTP {resp.status} {resp.reason}: {detail[:300]}")
        elif ep.stream:
            await _read_stream(resp, rec, st, ep.chat)
        else:
            await _read_json(resp, rec, st, ep.chat)


def _record_error(rec: RequestRecord, exc: BaseException) -> None:
    if isinstance(exc, _StreamError):
        rec.fail(exc.kind, str(exc))
    elif isinstance(exc, TimeoutError):
        rec.fail("timeout", "request timed out (--timeout)")
    elif isinstance(exc, aiohttp.ClientPayloadError):
        rec.fail("stream_cut", f"response cut off: {exc}")
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        rec.fail("disconnected", f"server disconnected: {exc}")
    elif isinstance(exc, aiohttp.ClientConnectorError):
        rec.fail("connect", f"cannot connect: {exc}")
    elif isinstance(exc, aiohttp.ClientError):
        rec.fail("client_error", f"{type(exc).__name__}: {exc}")
    else:
        rec.fail("unexpected", f"{type(exc).__name__}: {exc}")


async def _read_stream(
    resp: aiohttp.ClientResponse, rec: RequestRecord, st: float, chat: bool
) -> None:
    parser = SSEParser()
    state = _StreamState(rec, st, chat)
    # iter_any hands over whatever arrived, so a long stream is never throttled by the
    # line-oriented reader's small buffer
    async for chunk in resp.content.iter_any():
        now = rec.heard = time.perf_counter()
        for payload in parser.feed(chunk):
            state.on_event(payload, now)
    for payload in parser.close():
        state.on_event(payload, time.perf_counter())
    state.finish()


class _StreamState:
    __slots__ = ("chat", "last", "parts", "rec", "st")

    def __init__(self, rec: RequestRecord, st: float, chat: bool) -> None:
        self.rec, self.st, self.chat = rec, st, chat
        self.last = st
        self.parts: list[str] = []

    def on_event(self, payload: str, now: float) -> None:
        if payload == "[DONE]" or not payload:
            return
        try:
            data = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise _StreamError(
                "malformed_json", f"malformed JSON in stream: {payload[:120]!r}"
            ) from exc
        if not isinstance(data, dict):
            raise _StreamError(
                "malformed_json", f"stream event is not an object: {payload[:120]!r}"
            )
        rec = self.rec
        if (usage := data.get("usage")) and isinstance(usage, dict):
            _read_usage(rec, usage)
        if isinstance(timings := data.get("timings"), dict):
            _read_timings(rec, timings)
        choices = data.get("choices")
        if choices:
            choice = choices[0] if isinstance(choices, list) else None
            if not isinstance(choice, dict):
                raise _StreamError("malformed_json", f"unexpected choices: {payload[:120]!r}")
            text = (choice.get("delta") or {}).get("content") if self.chat else choice.get("text")
            if rec.ttft_s is None:
                rec.ttft_s = now - self.st
            else:
                rec.itl_s.append(now - self.last)
            self.last = now
            if text:
                if rec.ttft_content_s is None:
                    rec.ttft_content_s = now - self.st
                self.parts.append(text)
        elif "error" in data:
            err = data["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise _StreamError("stream_error", f"error event in stream: {str(msg)[:200]}")

    def finish(self) -> None:
        rec = self.rec
        if rec.ttft_s is None:
            raise _StreamError("no_tokens", "the stream ended without a message carrying choices")
        rec.e2el_s = self.last - self.st
        rec.text = "".join(self.parts)


def _read_usage(rec: RequestRecord, usage: dict[str, Any]) -> None:
    completion, prompt = usage.get("completion_tokens"), usage.get("prompt_tokens")
    rec.server_completion_tokens = _int(completion)
    rec.server_prompt_tokens = _int(prompt)
    if isinstance(extra := usage.get("extra"), dict):
        _read_mlc_extra(rec, extra)
    _read_usage_times(rec, usage)
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
    if cached is None:
        return
    # llama-server may send both: its timings are the fuller account, and its cache_n wins
    # (whichever chunk comes first); usage's count only fills in where timings had none
    if rec.engine_account != ACCOUNT_LLAMACPP_TIMINGS:
        rec.engine_cached_tokens, rec.engine_account = cached, ACCOUNT_USAGE_DETAILS
    elif rec.engine_cached_tokens is None:
        rec.engine_cached_tokens = cached


def _read_mlc_extra(rec: RequestRecord, extra: dict[str, Any]) -> None:
    """MLC-LLM's per-request metrics (`usage.extra`, final chunk or the non-streamed body)."""
    prefill_n, decode_n = _int(extra.get("prefill_tokens")), _int(extra.get("decode_tokens"))
    if prefill_n is None and decode_n is None:
        return  # not MLC's object
    prompt = rec.server_prompt_tokens
    if prefill_n is not None and prompt is not None:
        rec.engine_cached_tokens = max(prompt - prefill_n, 0)
    rec.engine_prompt_n, rec.engine_predicted_n = prefill_n, decode_n
    if (ttft := _num(extra.get("ttft_s"))) is not None:
        rec.engine_prompt_ms = ttft * 1000.0
    if (rate := _num(extra.get("decode_tokens_per_s"))) and rate > 0:
        rec.engine_decode_ms_per_token = 1000.0 / rate
    rec.engine_account = ACCOUNT_MLC_USAGE_EXTRA


def _read_usage_times(rec: RequestRecord, usage: dict[str, Any]) -> None:
    """TabbyAPI's `usage.prompt_time` (seconds, rounded to 10 ms by TabbyAPI) and
    `completion_tokens_per_sec` (from its unrounded generation time), sent with every chunk and
    filled in once the request finishes: the last chunk's stand."""
    prompt_s, rate = _num(usage.get("prompt_time")), _num(usage.get("completion_tokens_per_sec"))
    if prompt_s is None and rate is None:
        return  # not TabbyAPI's usage, or not yet filled in
    rec.engine_prompt_n = rec.server_prompt_tokens
    rec.engine_predicted_n = rec.server_completion_tokens
    rec.engine_prompt_ms = None if prompt_s is None else prompt_s * 1000.0
    rec.engine_decode_ms_per_token = 1000.0 / rate if rate else None
    rec.engine_account = ACCOUNT_TABBY_USAGE_TIMES


def _read_timings(rec: RequestRecord, timings: dict[str, Any]) -> None:
    """llama-server's per-request `timings` (final chunk, or the non-streamed body)."""
    cached = _int(timings.get("cache_n"))
    prompt_n, prompt_ms = _int(timings.get("prompt_n")), _num(timings.get("prompt_ms"))
    predicted_n = _int(timings.get("predicted_n"))
    per_token = _num(timings.get("predicted_per_token_ms"))
    if all(v is None for v in (cached, prompt_n, prompt_ms, predicted_n, per_token)):
        return  # not llama.cpp's object
    if cached is not None:
        rec.engine_cached_tokens = cached
    rec.engine_prompt_n, rec.engine_prompt_ms = prompt_n, prompt_ms
    rec.engine_predicted_n, rec.engine_decode_ms_per_token = predicted_n, per_token
    rec.engine_account = ACCOUNT_LLAMACPP_TIMINGS


def _int(value: Any) -> int | None:
    """A token count as the server sent it; anything else (a string, a bool) is not trusted."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


async def _read_json(
    resp: aiohttp.ClientResponse, rec: RequestRecord, st: float, chat: bool
) -> None:
    raw = await resp.read()
    now = time.perf_counter()
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise _StreamError("malformed_json", f"malformed JSON response: {raw[:120]!r}") from exc
    if isinstance(usage := data.get("usage"), dict):
        _read_usage(rec, usage)
    if isinstance(timings := data.get("timings"), dict):
        _read_timings(rec, timings)
    # without streaming the first token arrives with the last: TTFT = E2EL
    rec.ttft_s = rec.e2el_s = now - st
    if text:
        rec.ttft_content_s = rec.ttft_s
        rec.text = text
