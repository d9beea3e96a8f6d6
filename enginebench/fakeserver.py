"""An OpenAI-compatible SSE server for tests and the client-overhead benchmark.

This is a TEST FIXTURE, never an engine: it generates no text, it streams a fixed token
string at a configurable pace. It serves /v1/completions and /v1/chat/completions (streamed
or not), /v1/models and /health on 127.0.0.1 only, and can inject failures (HTTP 500, a stream
cut off mid-way, malformed JSON) on a deterministic fraction of requests.

Output length: `tokens` is the "natural" length (where a model would emit EOS), capped by
max_tokens; `ignore_eos` makes it max_tokens; `min_tokens` (or generation_config's
min_new_tokens, a JSON string) raises it to at least that many.

In-process use (tests): `async with FakeServer(cfg) as srv: srv.base_url`, or from
synchronous code `with serve_in_thread(cfg) as srv:`. Command line: `enginebench fake-server
--port 0` prints the URL it listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"


@dataclass
class FakeServerConfig:
    model: str = "fake-model"
    tokens: int = 16  # natural output length (EOS position)
    token_text: str = " tok"  # the text of every generated token
    first_token_delay_s: float = 0.0
    token_delay_s: float = 0.0
    fail_fraction: float = 0.0  # answer HTTP 500
    cut_fraction: float = 0.0  # close the connection after half the tokens
    malformed_fraction: float = 0.0  # one event with broken JSON mid-stream
    # separate (OpenAI, vLLM: a last chunk with no choices) | in_last (llama.cpp) | none
    usage: str = "separate"
    ping: bool = False  # a ': ping' comment before the first token
    crlf: bool = False  # CRLF line endings
    split_writes: bool = False  # write every event in two halves (splits UTF-8 characters)
    coalesce: bool = False  # one write for the whole stream (zero delay only): cheapest
    reject_unknown_fields: bool = False  # HTTP 422 on ignore_eos/min_tokens (transformers serve)
    check_model: bool = True  # HTTP 404 for another model name
    keep_bodies: int = 1000  # the last request bodies, for tests to inspect
    max_running: int = 0  # generate for this many requests at once, queue the rest (0: any)


@dataclass
class _Stats:
    requests: int = 0
    authorization: str | None = None  # the last Authorization header seen
    bodies: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)


def _every(fraction: float, k: int) -> bool:
    """Deterministically true for `fraction` of k = 0, 1, 2, ... (evenly spread)."""
    return fraction > 0 and math.floor((k + 1) * fraction) > math.floor(k * fraction)


def output_length(body: dict[str, Any], natural: int, chat: bool) -> int:
    """How many tokens to generate for this request (the semantics the docstring states)."""
    max_tokens = body.get("max_completion_tokens") if chat else None
    max_tokens = max_tokens or body.get("max_tokens") or natural
    if body.get("ignore_eos"):
        return int(max_tokens)
    floor = int(body.get("min_tokens") or 0)
    gen_cfg = body.get("generation_config")
    if isinstance(gen_cfg, str):
        with contextlib.suppress(ValueError, AttributeError):
            floor = max(floor, int(json.loads(gen_cfg).get("min_new_tokens") or 0))
    return int(min(max_tokens, max(natural, floor)))


class FakeServer:
    def __init__(self, config: FakeServerConfig | None = None) -> None:
        self.config = config or FakeServerConfig()
        self.stats = _Stats(bodies=collections.deque(maxlen=self.config.keep_bodies))
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._slots: asyncio.Semaphore | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_post("/v1/chat/completions", self._chat)
        return app

    async def start(self, port: int = 0) -> FakeServer:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, port, backlog=4096)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ handlers
    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _models(self, request: web.Request) -> web.Response:
        model = {"id": self.config.model, "object": "model", "root": self.config.model}
        return web.json_response({"object": "list", "data": [model]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        cfg = self.config
        k = self.stats.requests
        self.stats.requests += 1
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "request body is not a JSON object")
        self.stats.bodies.append(body)
        self.stats.authorization = request.headers.get("Authorization")
        if cfg.check_model and body.get("model") != cfg.model:
            return _error(404, f"The model `{body.get('model')}` does not exist.")
        if cfg.reject_unknown_fields and ({"ignore_eos", "min_tokens"} & body.keys()):
            return _error(422, "Unrecognized request argument: ignore_eos/min_tokens")
        if _every(cfg.fail_fraction, k):
            return _error(500, "injected failure")
        if not cfg.max_running:
            return await self._respond(request, body, chat, k)
        if self._slots is None:  # made in the server's own event loop
            self._slots = asyncio.Semaphore(cfg.max_running)
        async with self._slots:  # a server that batches no more than this: it can be overloaded
            return await self._respond(request, body, chat, k)

    async def _respond(
        self, request: web.Request, body: dict[str, Any], chat: bool, k: int
    ) -> web.StreamResponse:
        cfg = self.config
        n = output_length(body, cfg.tokens, chat)
        prompt_tokens = _prompt_tokens(body, chat)
        if not body.get("stream"):
            return web.json_response(self._whole(n, prompt_tokens, chat))
        events = self._events(n, prompt_tokens, chat, body)
        if _every(cfg.malformed_fraction, k):
            events.insert(len(events) // 2, b'data: {"choices": [{"text": "x"\n\n')
        cut = _every(cfg.cut_fraction, k)
        if cfg.crlf:
            events = [e.replace(b"\n", b"\r\n") for e in events]
        zero_delay = cfg.token_delay_s == 0 and cfg.first_token_delay_s == 0
        if cfg.coalesce and zero_delay and not cut:
            return web.Response(body=b"".join(events), content_type="text/event-stream")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if cfg.first_token_delay_s:
            await asyncio.sleep(cfg.first_token_delay_s)
        for i, event in enumerate(events):
            if cut and i >= len(events) // 2:
                # drop the connection without ending the chunked body: a stream cut mid-way
                if request.transport is not None:
                    request.transport.close()
                return resp
            if i and cfg.token_delay_s:
                await asyncio.sleep(cfg.token_delay_s)
            if cfg.split_writes and len(event) > 1:
                half = _utf8_split_point(event)
                await resp.write(event[:half])
                await resp.write(event[half:])
            else:
                await resp.write(event)
        await resp.write_eof()
        return resp

    # ------------------------------------------------------------------ payloads
    def _events(self, n: int, prompt_tokens: int, chat: bool, body: dict[str, Any]) -> list[bytes]:
        cfg = self.config
        want_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": n,
            "total_tokens": prompt_tokens + n,
        }
        head = {
            "id": "fake-1",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": cfg.model,
        }

        def chunk(text: str | None, finish: str | None, role: bool = False) -> dict[str, Any]:
            if chat:
                delta: dict[str, Any] = (
                    {"role": "assistant", "content": ""} if role else {"content": text}
                )
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            return {**head, "choices": [choice]}

        finish = "length" if n >= int(body.get("max_tokens") or n) else "stop"
        middle = _sse(chunk(cfg.token_text, None))  # every token but the last is identical
        events: list[bytes] = [b": ping\n\n"] if cfg.ping else []
        if chat:
            events.append(_sse(chunk(None, None, role=True)))
        events += [middle] * max(n - 1, 0)
        last = chunk(cfg.token_text, finish) if n else None
        if last is not None and want_usage and cfg.usage == "in_last":
            last["usage"] = usage
        if last is not None:
            events.append(_sse(last))
        if want_usage and cfg.usage == "separate":
            events.append(_sse({**head, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return events

    def _whole(self, n: int, prompt_tokens: int, chat: bool) -> dict[str, Any]:
        text = self.config.token_text * n
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length",
            }
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}
        out: dict[str, Any] = {
            "id": "fake-1",
            "object": "chat.completion" if chat else "text_completion",
            "model": self.config.model,
            "choices": [choice],
        }
        if self.config.usage != "none":
            out["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": n,
                "total_tokens": prompt_tokens + n,
            }
        return out


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def _utf8_split_point(event: bytes) -> int:
    """Split inside a multi-byte character when there is one (the hard case for clients)."""
    for i, byte in enumerate(event):
        if byte >= 0xC0:  # a UTF-8 lead byte: split right after it
            return i + 1
    return len(event) // 2


def _prompt_tokens(body: dict[str, Any], chat: bool) -> int:
    """A stand-in prompt count (whitespace words): the fixture has no tokenizer."""
    if chat:
        text = " ".join(str(m.get("content", "")) for m in body.get("messages") or [])
    else:
        text = str(body.get("prompt", ""))
    return len(text.split())


def _error(status: int, message: str) -> web.Response:
    err = {"error": {"message": message, "type": "fake_error", "code": status}}
    return web.json_response(err, status=status)


@contextlib.contextmanager
def serve_in_thread(config: FakeServerConfig | None = None) -> Iterator[FakeServer]:
    """Run a FakeServer on its own event loop in a daemon thread (for synchronous callers)."""
    loop = asyncio.new_event_loop()
    server = FakeServer(config)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("fake server did not start within 10 s")
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _parse(argv: list[str]) -> tuple[FakeServerConfig, int]:
    p = argparse.ArgumentParser(prog="enginebench fake-server", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument("--model", default="fake-model")
    p.add_argument("--tokens", type=int, default=16, help="natural output length")
    p.add_argument("--token-text", default=" tok")
    p.add_argument("--first-token-delay-ms", type=float, default=0.0)
    p.add_argument("--token-delay-ms", type=float, default=0.0)
    p.add_argument("--fail-fraction", type=float, default=0.0)
    p.add_argument("--cut-fraction", type=float, default=0.0)
    p.add_argument("--malformed-fraction", type=float, default=0.0)
    p.add_argument("--usage", choices=("separate", "in_last", "none"), default="separate")
    p.add_argument("--ping", action="store_true")
    p.add_argument("--crlf", action="store_true")
    p.add_argument("--coalesce", action="store_true", help="one write per stream (zero delay)")
    p.add_argument("--reject-unknown-fields", action="store_true")
    p.add_argument("--any-model", action="store_true", help="accept any model name")
    p.add_argument("--max-running", type=int, default=0, help="requests generated at once")
    a = p.parse_args(argv)
    cfg = FakeServerConfig(
        model=a.model,
        tokens=a.tokens,
        token_text=a.token_text,
        first_token_delay_s=a.first_token_delay_ms / 1000,
        max_running=a.max_running,
        token_delay_s=a.token_delay_ms / 1000,
        fail_fraction=a.fail_fraction,
        cut_fraction=a.cut_fraction,
        malformed_fraction=a.malformed_fraction,
        usage=a.usage,
        ping=a.ping,
        crlf=a.crlf,
        coalesce=a.coalesce,
        reject_unknown_fields=a.reject_unknown_fields,
        check_model=not a.any_model,
        keep_bodies=0,
    )
    return cfg, a.port


async def _serve(config: FakeServerConfig, port: int) -> None:
    server = await FakeServer(config).start(port)
    print(f"fake-server listening on {server.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """`enginebench fake-server`: serve until interrupted (SIGINT/SIGTERM)."""
    import signal
    import sys

    config, port = _parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config, port))
    return 0
