"""`enginebench bench`: drive an OpenAI-compatible server and write vLLM-compatible results.

Open loop: requests are sent at absolute offsets from the arrival schedule (relative sleeps
would accumulate drift), optionally behind a `--max-concurrency` semaphore whose waiting time
is recorded as `queue_s` and kept out of TTFT (as vLLM does). Closed loop (`--concurrency N`):
N users, each sending its next request when its previous one returns. Warm-up requests run
before the clock starts and are excluded from everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from enginebench.jsonfile import WriteFailed
from enginebench.loadgen import (
    cli_args,
    datasets,
    interference,
    server_metrics,
    telemetry,
    traces,
    workers,
)
from enginebench.loadgen.arrivals import arrival_offsets
from enginebench.loadgen.client import Endpoint, RequestRecord, build_body, send
from enginebench.loadgen.errors import (
    EXIT_FAILED_REQUESTS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_STALLED,
    EXIT_UNWRITABLE,
    EXIT_USAGE,
    BenchError,
)
from enginebench.loadgen.metrics import by_offered_rate
from enginebench.loadgen.results import build_summary, format_table, result_paths, write_results
from enginebench.loadgen.target import fatal_error, make_endpoint, request_headers, resolve_model
from enginebench.loadgen.tokenizer import Tokenizer, count_tokens, tokenizer_for
from enginebench.loadgen.validity import judge, overloaded
from enginebench.provenance import now_iso

# Wake this long before a send time and yield-spin the rest: the event loop's timers wake up
# to ~1 ms late (epoll's millisecond timeout), too coarse for the dispatch-lag target.
_SPIN_S = 0.0015
# a request's total time (vLLM's is 6 hours: a benchmark wants an answer sooner; a server that
# stops sending is caught by the stall watch well before)
_REQUEST_TIMEOUT_S = 1800.0
# the stall watch: no byte from the server for any request in flight for this long (at least
# the floor; else 10x the slowest gap between two tokens seen, 3x the slowest TTFT)
_STALL_FLOOR_S = 120.0
_STALL_CHECK_S = 1.0
_STALL_WARMUP_FLOOR_S = 600.0
# early stop of an over-saturated open-loop point (validity.overloaded): checked this often, from
# this far into the schedule on
_WATCH_S = 1.0
_WATCH_FROM_S = 5.0
_WATCH_CHECKS = 3
# after the schedule's last send, its drain runs this long (or as long as the schedule took, if
# longer) before the early stop judges it: cutting a shorter drain saves less than it loses
# (seen: MLC-LLM's 8-request point at 1 req/s on 2 cores cut at 14 s, 1 request of 8
# completed, where draining took 19 s)
_DRAIN_GRACE_S = 20.0


def _err(message: str) -> None:
    print(f"enginebench bench: error: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `enginebench bench`; returns the exit status (see errors.py)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = cli_args.parse_args(argv)
        if args.save_prompts:
            path = datasets.materialize(args)
            print(f"wrote {args.num_prompts} prompts to {path}", file=sys.stderr)
            return EXIT_OK
        return asyncio.run(_bench(args, argv))
    except SystemExit as exc:  # argparse: --help, or a bad flag (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except BenchError as exc:
        _err(str(exc))
        return exc.exit_code
    except WriteFailed as exc:  # a full disk: the point is not recorded, nothing half-written
        _err(str(exc))
        return EXIT_UNWRITABLE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED


@dataclass
class _Outcome:
    elapsed: float
    interrupted: bool = False
    fatal: BenchError | None = None
    started: str = ""  # the measured window, UTC ISO 8601 (the summary's provenance)
    finished: str = ""


class Bench:
    """State of one run (or of one worker's share of it, enginebench.loadgen.workers): the
    session, the records, and the abort switch. `bodies`: by request index."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ep: Endpoint,
        bodies: Sequence[bytes] | Mapping[int, bytes],
        records: list[RequestRecord],
        cap: int | None,
        show_progress: bool,
    ) -> None:
        self.session, self.ep, self.bodies, self.records = session, ep, bodies, records
        self.cap = cap
        self.sem = asyncio.Semaphore(cap) if cap else None
        self.t0 = time.perf_counter()
        self.inflight = 0
        self.max_inflight = 0
        self.any_ok = False
        self.fatal: BenchError | None = None
        self.early_stopped = False
        self.all_sent_s: float | None = None  # when the open-loop schedule sent its last one
        self.stalled: list[RequestRecord] = []  # in flight when the server stopped sending
        self.stall_s: float | None = None  # the limit it passed
        self.last_done = 0.0  # perf_counter of the last completion
        # streams seen before this point (the warm-up's, earlier points'): the early stop's pace
        self.reference: list[RequestRecord] = []
        self.slowest = 0.0  # the stall limit's yardstick: 10x a token gap, 3x a TTFT seen
        self.stop = asyncio.Event()
        self.pbar: Any = None
        if show_progress:
            from tqdm import tqdm

            self.pbar = tqdm(total=len(records), file=sys.stderr, unit="req")

    async def _send(self, rec: RequestRecord, body: bytes) -> None:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await send(self.session, self.ep, body, rec, self.t0)
        finally:
            self.inflight -= 1
            self.last_done = time.perf_counter()
        self.slowest = max(self.slowest, 10 * max(rec.itl_s, default=0.0), 3 * (rec.ttft_s or 0))
        # lateness of the actual send, semaphore wait excluded (that is queue_s)
        rec.dispatch_lag_s = rec.sent_s - rec.scheduled_s - rec.queue_s
        if rec.ok:
            self.any_ok = True
        elif self.fatal is None and not self.any_ok:
            self.fatal = fatal_error(rec, self.ep)
            if self.fatal is not None:
                self.stop.set()
        if self.pbar is not None:
            self.pbar.update(1)

    async def _capped(self, rec: RequestRecord) -> None:
        body = self.bodies[rec.index]
        if self.sem is None:
            await self._send(rec, body)
            return
        waiting = time.perf_counter()
        async with self.sem:
            rec.queue_s = time.perf_counter() - waiting
            if not self.stop.is_set():
                await self._send(rec, body)

    async def warmup(
        self, bodies: list[bytes], limit: int | None, limit_s: float | None = None
    ) -> None:
        """One request per body, concurrently, then discarded. vLLM sends its first prompt
        n times; here the warm-up has prompts of its own, so that the measured requests do not
        find theirs in a prefix cache."""
        n = len(bodies)
        recs = [RequestRecord(-1, self.records[0].expected_output_len, None) for _ in range(n)]
        cap = asyncio.Semaphore(limit or n)

        async def one(rec: RequestRecord, body: bytes) -> None:
            async with cap:
                await send(self.session, self.ep, body, rec, time.perf_counter())

        self.reference += recs
        stall = asyncio.create_task(self.watch_stalls(limit_s, recs, _STALL_WARMUP_FLOOR_S))
        sends: asyncio.Future[Any] = asyncio.gather(
            *(one(r, b) for r, b in zip(recs, bodies, strict=True))
        )
        stopped: asyncio.Future[Any] = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({sends, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stall.cancel()
            stopped.cancel()
        if self.stalled:
            sends.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sends
            raise BenchError(
                f"the warm-up stalled: the server sent nothing for {self.stall_s:.0f} s",
                "read the server's log (a wedged device or scheduler), or raise --stall-timeout",
                EXIT_STALLED,
            )
        failures = [r for r in recs if not r.ok]
        if failures and len(failures) == n and (fatal := fatal_error(failures[0], self.ep)):
            raise fatal

    async def watch_stalls(
        self, limit: float | None, records: list[RequestRecord] | None = None, floor: float = 0.0
    ) -> None:
        """Stop the point when the server has sent nothing for any request in flight, nor
        finished one, for `limit` seconds (None: the floor, or 10x the slowest token gap and 3x
        the slowest TTFT seen so far, if longer): a wedged server ends the point in bounded time
        instead of at each request's timeout. Those requests are recorded as failed (stalled).
        `records`: the warm-up's (default: the point's); `floor`: a higher floor (a first
        request may compile kernels)."""
        watched = self.records if records is None else records
        while not self.stop.is_set():
            await asyncio.sleep(_STALL_CHECK_S)
            flying = [r for r in watched if r.status == "pending" and r.heard > 0]
            if not flying:
                continue
            bound = limit if limit is not None else max(_STALL_FLOOR_S, floor, self.slowest)
            quiet = time.perf_counter() - max(self.last_done, *(r.heard for r in flying))
            if quiet > bound:
                print(
                    f"stalled: no byte from the server for {quiet:.0f} s with {len(flying)} "
                    f"requests in flight (limit {bound:.0f} s); stopping this point",
                    file=sys.stderr,
                )
                self.stalled, self.stall_s = flying, bound
                self.stop.set()
                return

    async def _watch(self, rate: float) -> None:
        """Stop the point once it is clearly over-saturated (validity.overloaded)."""
        start = max(_WATCH_FROM_S, 0.25 * len(self.records) / rate)
        streak, backlog = 0, 0
        while not self.stop.is_set():
            await asyncio.sleep(_WATCH_S)
            if time.perf_counter() - self.t0 < start:
                continue
            # overloaded at _WATCH_CHECKS checks in a row with a backlog that does not shrink:
            # a server that stalls for a moment and then catches up is left to catch up. After
            # the last send the backlog can only shrink: its drain is given a grace, then one
            # that shrinks by less than the offered rate (it would grow if requests still
            # arrived) is not catching up
            now = time.perf_counter() - self.t0
            drained = backlog - self.inflight
            sent = self.all_sent_s
            if sent is None:
                behind = drained <= 0
            else:
                behind = now > sent + max(_DRAIN_GRACE_S, sent) and drained < rate * _WATCH_S
            growing = behind and overloaded(self.records, self.inflight, rate, now, self.reference)
            streak, backlog = (streak + 1 if growing else 0), self.inflight
            if streak >= _WATCH_CHECKS:
                print(
                    f"over-saturated: {self.inflight} requests in flight and TTFT growing; "
                    "stopping this point early (recorded as saturated)",
                    file=sys.stderr,
                )
                self.early_stopped = True
                self.stop.set()
                return

    async def open_loop(
        self,
        offsets: list[float],
        rate: float,
        duration: float | None,
        early_stop: bool = True,
        t0: float | None = None,
    ) -> None:
        """Send each request at its offset (s from the start: now, or `t0`, a perf_counter
        time the workers of one run share); `rate`: the offered one, for the early stop."""
        tasks: list[asyncio.Task[None]] = []
        self.t0 = t0 = time.perf_counter() if t0 is None else t0
        watch = (
            asyncio.create_task(self._watch(rate)) if early_stop and math.isfinite(rate) else None
        )
        try:
            for rec, offset in zip(self.records, offsets, strict=True):
                if duration is not None and offset > duration:
                    break
                target = t0 + offset
                rec.scheduled_s = offset
                if target - time.perf_counter() > 0:
                    await _sleep_until(target)
                elif len(tasks) % 64 == 63:
                    await asyncio.sleep(0)  # a burst (rate inf): let the first ones go out
                now = time.perf_counter()
                if self.stop.is_set() or (duration is not None and now - t0 > duration):
                    break
                tasks.append(asyncio.create_task(self._capped(rec)))
            self.all_sent_s = time.perf_counter() - t0
            await self._drain(tasks)
        except asyncio.CancelledError:
            await _cancel(tasks)
            raise
        finally:
            if watch is not None:
                watch.cancel()

    async def closed_loop(self, users: int, duration: float | None) -> None:
        indices = iter(range(len(self.records)))
        self.t0 = time.perf_counter()
        tasks = [asyncio.create_task(self._user(indices, duration)) for _ in range(users)]
        try:
            await self._drain(tasks)
        except asyncio.CancelledError:
            await _cancel(tasks)
            raise

    async def _user(self, indices: Iterator[int], duration: float | None) -> None:
        for i in indices:
            now = time.perf_counter()
            if self.stop.is_set() or (duration is not None and now - self.t0 > duration):
                return
            rec = self.records[i]
            rec.scheduled_s = now - self.t0
            await self._send(rec, self.bodies[i])

    async def sessions(self, plan: Sessions, users: int, duration: float | None) -> None:
        """Closed loop over multi-turn sessions: `users` users, each running whole sessions one
        after another, a session's turns in order (each sent once the previous one is answered
        and its think time has passed)."""
        queue = iter(plan.groups)
        self.t0 = time.perf_counter()
        n = min(users, len(plan.groups))
        tasks = [asyncio.create_task(self._session_user(queue, plan, duration)) for _ in range(n)]
        try:
            await self._drain(tasks)
        except asyncio.CancelledError:
            await _cancel(tasks)
            raise

    async def _session_user(
        self, queue: Iterator[list[int]], plan: Sessions, duration: float | None
    ) -> None:
        for turns in queue:
            history = plan.start()
            for k, i in enumerate(turns):
                now = time.perf_counter()
                if self.stop.is_set() or (duration is not None and now - self.t0 > duration):
                    return
                rec, p = self.records[i], plan.prompts[i]
                body = history.turn(self.ep, rec, p)
                rec.scheduled_s = time.perf_counter() - self.t0
                await self._send(rec, body)
                if not rec.ok:  # the session cannot go on without its answer
                    for j in turns[k + 1 :]:
                        self.records[j].fail("cancelled", "an earlier turn of its session failed")
                    break
                history.answered(rec)
                if plan.think[i] > 0 and k + 1 < len(turns):
                    await asyncio.sleep(plan.think[i])

    async def _drain(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait for the tasks; on a fatal error cancel what is still in flight."""
        if not tasks:
            return
        everything: asyncio.Future[Any] = asyncio.gather(*tasks, return_exceptions=True)
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({everything, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if not everything.done():
            await _cancel(tasks)


@dataclass
class Sessions:
    """Multi-turn sessions to run: the messages, their sessions (indices), the think time after
    each, and the client's tokenizer (None: the server's counts only)."""

    prompts: list[datasets.Prompt]
    groups: list[list[int]]
    think: list[float]
    tok: Tokenizer | None

    def start(self) -> History:
        return History(self.tok)


class History:
    """One session's conversation so far, and what each turn's prompt shares with it.

    A turn's prompt is the history then its message: the completions endpoint gets the text
    (earlier prompt + answer + message), a chat endpoint the messages. `expected_cached_len`:
    the previous turn's prompt, which every engine has computed (the longest common prefix of
    the two prompts' tokens, client side; on a chat endpoint, the server's count of the previous
    prompt); `shared_prefix_len`: that and the previous answer, the cache hits the workload asks
    for."""

    def __init__(self, tok: Tokenizer | None) -> None:
        self.tok = tok
        self.text = ""
        self.messages: list[dict[str, str]] = []
        self.prompt_ids: list[int] = []  # the previous turn's prompt, and with its answer
        self.full_ids: list[int] = []
        self.previous: RequestRecord | None = None

    def turn(self, ep: Endpoint, rec: RequestRecord, p: datasets.Prompt) -> bytes:
        first = self.previous is None
        if ep.chat:
            self.messages.append({"role": "user", "content": p.prompt})
            prev = self.previous
            if prev is not None and prev.server_prompt_tokens is not None:
                answer = prev.server_completion_tokens or 0  # output_len is set after the run
                rec.expected_cached_len = prev.server_prompt_tokens
                rec.shared_prefix_len = prev.server_prompt_tokens + answer
            elif first:
                rec.expected_cached_len = 0
            return build_body(ep, list(self.messages), p.output_len)
        text = self.text + p.prompt
        if self.tok is not None:
            ids = self.tok.encode(text)
            rec.prompt_len = len(ids)
            rec.expected_cached_len = 0 if first else datasets.common_prefix(ids, self.prompt_ids)
            rec.shared_prefix_len = max(
                rec.shared_prefix_len, datasets.common_prefix(ids, self.full_ids)
            )
            self.prompt_ids = ids
        self.text = text
        return build_body(ep, text, p.output_len)

    def answered(self, rec: RequestRecord) -> None:
        self.previous = rec
        self.messages.append({"role": "assistant", "content": rec.text})
        self.text += rec.text
        if self.tok is not None:
            self.full_ids = self.tok.encode(self.text)


def _think_times(args: argparse.Namespace, n: int) -> list[float]:
    if args.think_time_dist == "exponential" and args.think_time > 0:
        return np.random.default_rng(args.seed).exponential(args.think_time, n).tolist()
    return [args.think_time] * n


async def _sleep_until(target: float) -> None:
    delay = target - time.perf_counter() - _SPIN_S
    if delay > 0:
        await asyncio.sleep(delay)
    while time.perf_counter() < target:
        await asyncio.sleep(0)


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _bench(args: argparse.Namespace, argv: list[str]) -> int:
    tok = tokenizer_for(
        args, required=not args.prompts_file and datasets.needs_tokenizer(args.dataset_name)
    )
    # the warm-up's own prompts come first, the measured ones after them
    warm, prompts = datasets.split_warmups(
        datasets.build_prompts(args, tok, args.num_warmups), args.num_warmups
    )
    sessions = None
    if groups := datasets.sessions_of(prompts):
        if not args.concurrency:  # a prompt file of sessions (the flags checked the dataset)
            raise cli_args.sessions_closed_loop()
        sessions = Sessions(prompts, groups, _think_times(args, len(prompts)), tok)
    base = cli_args.base_url(args)
    cap = args.max_concurrency or args.concurrency
    # A new connection per request (as if each had its own session): llama-server closes
    # kept-alive connections at the end of a stream, and a request written onto one of those
    # fails with "Can not write request body" (seen at 4 closed-loop users, also after a retry).
    connector = aiohttp.TCPConnector(limit=cap or 0, limit_per_host=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=_timeout_s(args))
    headers = request_headers(args)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers, read_bufsize=1 << 20
    ) as session:
        model = await resolve_model(session, base, args)
        ep = make_endpoint(args, base, model)
        bodies = [build_body(ep, p.prompt, p.output_len) for p in prompts]
        # what an ideal prefix cache serves each request, after what this server was sent before
        seen = [*datasets.groups_sent_before(args), *(p.group for p in warm)]
        expected = datasets.expected_cached(prompts, seen)
        records = [
            RequestRecord(
                i, p.output_len, p.prompt_len, shared_prefix_len=p.prefix_len,
                expected_cached_len=e, session=p.session,
                turn=None if p.turn is None else p.turn + 1,  # counted from 1 in results
            )
            for i, (p, e) in enumerate(zip(prompts, expected, strict=True))
        ]  # fmt: skip
        show = sys.stderr.isatty() and not args.disable_tqdm and args.num_workers == 1
        bench = Bench(session, ep, bodies, records, args.max_concurrency, show)
        bench.reference = [r for path in args.reference_records for r in _streams(path)]
        if args.num_warmups:
            print(f"Warming up with {args.num_warmups} requests...", file=sys.stderr)
            warm_bodies = [build_body(ep, p.prompt, p.output_len) for p in warm]
            await bench.warmup(warm_bodies, cap, _stall_limit(args))
        _announce(args, ep)
        offsets = _offsets(args, prompts)
        watch = None
        if args.server_metrics:  # the server's own counters around the measured window
            watch = server_metrics.Watch(base + "/" + args.server_metrics.lstrip("/"), headers)
            await watch.start()
        sampler = telemetry.start(args.gpu_telemetry)
        host = interference.start(args.host_interference, base, args.server_pid, args.gpu_telemetry)
        try:
            outcome = await _measure(bench, args, offsets, sessions)
        finally:
            gpu = sampler.stop() if sampler is not None else {}
            gpu |= host.stop() if host is not None else {}
            server = await watch.stop() if watch is not None else {}
    gpu |= server  # the summary's telemetry: the GPU's (NVML), the server's own (Prometheus)
    if bench.pbar is not None:
        bench.pbar.close()
    return _finish(args, argv, ep, tok, records, bench, outcome, gpu | _replay(args, offsets))


def _streams(path: str) -> list[RequestRecord]:
    """The streams of a records JSONL (`--reference-records`), cancelled ones too (their pace
    was seen all the same), as far as the early stop and the judgement read them
    (validity.streaming_latency, validity.fastest_e2el); a missing file: none."""
    out = []
    with contextlib.suppress(FileNotFoundError), open(path) as f:
        for line in f:
            row = json.loads(line)
            if row.get("ttft_s") is not None and row.get("itl_s"):
                rec = RequestRecord(row["index"], row.get("expected_output_len"), None)
                rec.ttft_s, rec.itl_s, rec.heard = row["ttft_s"], row["itl_s"], 1.0
                if row.get("status") == "ok":
                    rec.status, rec.e2el_s = "ok", row.get("e2el_s")
                    rec.output_len = row.get("output_len")
                out.append(rec)
    return out


def _timeout_s(args: argparse.Namespace) -> float:
    return float(args.timeout or _REQUEST_TIMEOUT_S)


def _scheduled(args: argparse.Namespace) -> bool:
    """An open loop whose times are not a steady rate's: a trace's replay or a ramp."""
    return args.trace_speedup is not None or args.ramp is not None


def _stall_limit(args: argparse.Namespace) -> float | None:
    """`--stall-timeout`: None (the default rule), or seconds (0: never)."""
    return None if args.stall_timeout is None else args.stall_timeout or math.inf


def _offsets(args: argparse.Namespace, prompts: list[datasets.Prompt]) -> list[float]:
    """The open loop's send offsets: the trace's own (`--trace-speedup`), else Poisson."""
    if args.trace_speedup is not None:
        return traces.replay_offsets(prompts, args.trace_speedup)
    n, rate = len(prompts), args.request_rate
    return arrival_offsets(n, rate, args.burstiness, args.seed, args.ramp).tolist()


async def _measure(
    bench: Bench, args: argparse.Namespace, offsets: list[float], sessions: Sessions | None
) -> _Outcome:
    interrupted, started = False, now_iso("milliseconds")
    # Move everything allocated so far out of the collector's reach: full collections over
    # the setup's objects (tokenizer, prompts) otherwise stall the loop for milliseconds.
    gc.collect()
    gc.freeze()
    stall = asyncio.create_task(bench.watch_stalls(_stall_limit(args)))
    try:
        if sessions is not None:
            await bench.sessions(sessions, args.concurrency, args.duration)
        elif args.concurrency:
            await bench.closed_loop(args.concurrency, args.duration)
        else:
            # a trace's own times, or a rate that rises on purpose: run whole, no early stop
            rate = math.inf if _scheduled(args) else args.request_rate
            early = args.early_stop and not _scheduled(args)
            if args.num_workers > 1:
                await workers.open_loop(
                    bench, args.num_workers, offsets, rate, args.duration, early,
                    _stall_limit(args), request_headers(args), _timeout_s(args),
                )  # fmt: skip
            else:
                await bench.open_loop(offsets, rate, args.duration, early)
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels us; keep what completed
        interrupted = True
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        gc.unfreeze()
        stall.cancel()
    for rec in bench.stalled:  # cancelled by the stop: failed, for the reason it was stopped
        rec.fail("stalled", f"the server sent nothing for {bench.stall_s:.0f} s")
    elapsed = time.perf_counter() - bench.t0
    return _Outcome(elapsed, interrupted, bench.fatal, started, now_iso("milliseconds"))


def _replay(args: argparse.Namespace, offsets: list[float]) -> dict[str, Any]:
    """A trace replay's summary keys: its speed-up, requests and span (s, as replayed); the
    offered rate is the trace's mean over that span (`request_rate`). Nothing for other loads."""
    if args.trace_speedup is None:
        return {}
    span = offsets[-1] if offsets else 0.0
    return {
        "trace_speedup": args.trace_speedup,
        "trace_requests": len(offsets),
        "trace_span_s": span,
        "request_rate": len(offsets) / span if span > 0 else "inf",
    }


def _ramped(args: argparse.Namespace, records: list[RequestRecord]) -> dict[str, Any]:
    """A ramp's summary keys: vLLM's three, and TTFT and TPOT by the rate offered when each
    request was sent (`by_offered_rate`, five equal steps of the ramp: where latency breaks).
    Nothing for other loads."""
    ramp = args.ramp
    if ramp is None:
        return {}
    rates = ramp.rates(len(records))
    return {
        "ramp_up_strategy": ramp.strategy,
        "ramp_up_start_rps": ramp.start,
        "ramp_up_end_rps": ramp.end,
        "by_offered_rate": by_offered_rate(records, rates.tolist()),
    }


def _announce(args: argparse.Namespace, ep: Endpoint) -> None:
    if args.concurrency:
        load = f"closed loop, {args.concurrency} users"
    elif args.trace_speedup is not None:
        load = f"trace replay at {args.trace_speedup:g}x its own times"
    elif args.ramp is not None:
        ramp = args.ramp
        load = f"open loop, {ramp.strategy} ramp from {ramp.start:g} to {ramp.end:g} req/s"
    else:
        rate = "inf" if math.isinf(args.request_rate) else f"{args.request_rate:g} req/s"
        load = f"open loop, {rate}, burstiness {args.burstiness:g}, cap {args.max_concurrency}"
    print(
        f"Benchmarking {ep.url} ({ep.model}): {args.num_prompts} prompts, {load}", file=sys.stderr
    )


def _finish(
    args: argparse.Namespace,
    argv: list[str],
    ep: Endpoint,
    tok: Tokenizer | None,
    records: list[RequestRecord],
    bench: Bench,
    outcome: _Outcome,
    gpu: dict[str, Any],
) -> int:
    finished = [r for r in records if r.status in ("ok", "failed") and r.error_kind != "cancelled"]
    cancelled = sum(1 for r in records if r.error_kind == "cancelled")
    uncounted = 0
    for r in finished:
        if r.ok:
            if tok is not None:  # after the run: never in the hot path
                r.client_output_tokens = count_tokens(tok, r.text)
            # vLLM: the server's usage, else the client's count, else 1 (no tokenizer)
            r.output_len = r.server_completion_tokens or (r.client_output_tokens if tok else 1)
            uncounted += not r.server_completion_tokens and tok is None
    if uncounted:
        print(
            f"note: {uncounted} responses carried no usage and no --tokenizer was given: "
            "each counts as 1 output token (as in vLLM); pass --tokenizer to count them",
            file=sys.stderr,
        )
    duration = max((r.end_s for r in finished), default=outcome.elapsed)
    summary = build_summary(args, argv, ep, tok is not None, finished, duration)
    summary.update(
        max_inflight_observed=bench.max_inflight,
        num_sent=len(finished) + cancelled,
        cancelled=cancelled,
        interrupted=outcome.interrupted,
        error=str(outcome.fatal) if outcome.fatal else None,
        # the workload's deliberate sharing (tables label such points) and where its rows began
        shared_prefix_len=max((r.shared_prefix_len for r in records), default=0),
        prompt_offset=args.prompt_offset,
        early_stopped=bench.early_stopped,
        stalled=bool(bench.stalled),
        stall_limit_s=bench.stall_s,
        num_workers=args.num_workers,
    )
    if args.num_workers > 1:  # each worker's share: did one of them fall behind?
        summary["per_worker"] = workers.per_worker(records, args.num_workers)
    if args.point is not None:  # what it measured, as the sweep named it
        p = args.point
        load = "inf" if math.isinf(p.load) else p.load  # as request_rate: JSON has no inf
        summary["point"] = {"name": p.name, "mode": p.mode, "load": load, "repeat": p.repeat}
    if args.provenance is not None:  # the one writer of the file: nothing rewrites it later
        window = {"started": outcome.started, "finished": outcome.finished}
        summary["provenance"] = {**args.provenance, **window}
    summary.update(gpu)
    summary.update(_ramped(args, records))  # once output lengths are final (TPOT)
    summary.update(telemetry.per_joule(summary))
    # saturation is not judged for a replay (its bursts and its lengths' order are the trace's)
    # nor a ramp (not a steady rate: where it breaks is what it measures, by_offered_rate)
    offered = None if args.concurrency or _scheduled(args) else args.request_rate
    open_loop = not args.concurrency and (_scheduled(args) or math.isfinite(args.request_rate))
    summary.update(judge(summary, finished, offered, args.min_duration, open_loop, bench.reference))
    if args.save_result:
        json_path, jsonl_path = result_paths(
            args.result_dir,
            args.result_filename,
            summary["backend"],
            args.request_rate,
            args.max_concurrency,
            ep.model,
            summary["date"],
        )
        write_results(summary, finished, json_path, jsonl_path)
        print(f"Results written to {json_path} and {jsonl_path}", file=sys.stderr)
    print(format_table(summary, args.percentile_metrics, args.metric_percentiles))
    return _exit_status(summary, outcome, args.max_failed_fraction)


def _exit_status(summary: dict[str, Any], outcome: _Outcome, max_failed_fraction: float) -> int:
    if outcome.fatal is not None:
        raise outcome.fatal
    if summary["stalled"]:
        _err(
            f"the server stopped sending for {summary['stall_limit_s']:.0f} s with requests in "
            "flight; the point was stopped and what completed was written; fix: read the "
            "server's log (a wedged device or scheduler), or raise --stall-timeout"
        )
        return EXIT_STALLED
    if outcome.interrupted:
        _err("interrupted; the requests that completed were written")
        return EXIT_INTERRUPTED
    done, failed = summary["completed"], summary["failed"]
    if failed and not done:
        kinds = ", ".join(f"{k} x{v}" for k, v in summary["errors_by_kind"].items())
        _err(f"all {failed} requests failed ({kinds}); fix: check the server log and flags")
        return EXIT_RUNTIME
    if failed and failed / (done + failed) > max_failed_fraction:
        kinds = ", ".join(f"{k} x{v}" for k, v in summary["errors_by_kind"].items())
        _err(
            f"{failed} of {done + failed} requests failed ({kinds}); results written; "
            "fix: check the server log, or allow some with --max-failed-fraction"
        )
        return EXIT_FAILED_REQUESTS
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
