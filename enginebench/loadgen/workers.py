"""The open loop split over worker processes (`bench --num-workers N`), for rates one process
cannot offer on time (one process: ~3,000 req/s on a quiet core, ~800 on a shared 2-core VM).

The schedule is computed once, in the main process, exactly as for one process (same seed ->
same send times); request i goes to worker i mod N, which sends it at the same offset from one
shared start. CLOCK_MONOTONIC (time.perf_counter) is one clock for every process of a host, so
the start is handed over as a perf_counter value, and each record's times are offsets from it
as in one process. The workers send the records back; the main process merges them by index
and writes one JSONL and one summary, as for one process. Each worker runs its own early-stop
and stall watches on its share (rate / N); whichever stops tells the others (a shared event),
as does a Ctrl-C of the main process (the workers ignore SIGINT: the main process decides).

`--max-concurrency` is split among the workers (a share each, not one shared cap).
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from enginebench.loadgen.client import Endpoint, RequestRecord
from enginebench.loadgen.errors import EXIT_RUNTIME, BenchError
from enginebench.loadgen.metrics import achieved_rate, dispatch_lag_ms

# the rate one worker is given at most under `--num-workers auto`: a third of what one process
# offered on time on a quiet core (3,000 req/s), so that a loaded machine's worker keeps up
PER_WORKER_RATE = 1000.0
_START_IN_S = 0.25  # the shared start, after every worker said it is ready
_POLL_S = 0.05  # how often a worker looks at the shared stop


def auto_workers(rate: float | None, cap: int | None) -> int:
    """Workers for `--num-workers auto`: one per PER_WORKER_RATE of a finite rate, no more
    than the CPUs this process may use leave beside one (and no more than the cap); one for
    a burst (rate inf: what it measures is the server's queue) or a closed loop (rate None)."""
    if rate is None or not math.isfinite(rate):
        return 1
    cpus = len(os.sched_getaffinity(0))
    n = min(math.ceil(rate / PER_WORKER_RATE), max(1, cpus - 1))
    return max(1, min(n, cap or n))


def check(workers: int, cap: int | None, open_loop: bool) -> None:
    """One-line errors before anything is sent."""
    if workers < 1:
        raise BenchError("--num-workers must be at least 1", "pass a positive count or auto")
    if workers > 1 and not open_loop:
        raise BenchError(
            f"--num-workers {workers} applies to an open loop (--request-rate, a ramp, a trace)",
            "drop --num-workers: a closed loop's users wait on the server, not on the client",
        )
    if workers > 1 and cap is not None and cap < workers:
        raise BenchError(
            f"--max-concurrency {cap} is split among {workers} workers: fewer than one each",
            "pass --num-workers at most --max-concurrency",
        )


def shares(n: int, workers: int) -> list[list[int]]:
    """Request indices per worker: i goes to worker i mod `workers`."""
    return [list(range(w, n, workers)) for w in range(workers)]


@dataclass
class Job:
    """What one worker is given: its requests, their bodies and offsets, and the run's
    settings (the session's as the main process would open it)."""

    worker: int
    ep: Endpoint
    headers: dict[str, str]
    timeout_s: float
    records: list[RequestRecord]
    bodies: dict[int, bytes]
    offsets: list[float]
    rate: float  # this worker's share of the offered rate (the early stop's yardstick)
    duration: float | None
    cap: int | None
    stall_limit: float | None
    early_stop: bool


@dataclass
class Outcome:
    """What one worker sends back."""

    records: list[RequestRecord]
    early_stopped: bool = False
    stalled: list[int] = field(default_factory=list)  # indices in flight at a stall
    stall_s: float | None = None
    max_inflight: int = 0
    fatal: tuple[str, str, int] | None = None  # a BenchError's problem, fix, exit status


def _main(job: Job, conn: Connection, stop: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides: `stop` ends us
    try:
        conn.send(asyncio.run(_run(job, conn, stop)))
    finally:
        conn.close()


async def _run(job: Job, conn: Connection, stop: Any) -> Outcome:
    from enginebench.loadgen.runner import Bench  # the one process's loop, as it runs there

    connector = aiohttp.TCPConnector(limit=job.cap or 0, limit_per_host=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=job.timeout_s)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=job.headers, read_bufsize=1 << 20
    ) as session:
        bench = Bench(session, job.ep, job.bodies, job.records, job.cap, False)
        conn.send("ready")
        t0 = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        relay = asyncio.create_task(_relay(stop, bench.stop))
        stall = asyncio.create_task(bench.watch_stalls(job.stall_limit))
        gc.collect()
        gc.freeze()
        try:
            await bench.open_loop(job.offsets, job.rate, job.duration, job.early_stop, t0=t0)
        finally:
            gc.unfreeze()
            relay.cancel()
            stall.cancel()
    if bench.stop.is_set():
        stop.set()  # an early stop, a stall or a fatal error here ends the others too
    fatal = bench.fatal
    return Outcome(
        job.records,
        bench.early_stopped,
        [r.index for r in bench.stalled],
        bench.stall_s,
        bench.max_inflight,
        (fatal.problem, fatal.fix, fatal.exit_code) if fatal else None,
    )


async def _relay(shared: Any, local: asyncio.Event) -> None:
    """Set the worker's own stop once the shared one is."""
    while not shared.is_set():
        await asyncio.sleep(_POLL_S)
    local.set()


async def open_loop(
    bench: Any,
    workers: int,
    offsets: Sequence[float],
    rate: float,
    duration: float | None,
    early_stop: bool,
    stall_limit: float | None,
    headers: dict[str, str],
    timeout_s: float,
) -> None:
    """Run `bench`'s open loop over `workers` processes and merge what they sent back into
    `bench` (records, early stop, stall, peak in flight, a fatal error). A cancellation (Ctrl-C)
    stops the workers, merges what completed and is raised again."""
    ctx = multiprocessing.get_context("spawn")  # never fork a process with an event loop
    stop = ctx.Event()
    cap, conns, procs = bench.cap, [], []
    for w, idx in enumerate(shares(len(bench.records), workers)):
        job = Job(
            worker=w,
            ep=bench.ep,
            headers=headers,
            timeout_s=timeout_s,
            records=[bench.records[i] for i in idx],
            bodies={i: bench.bodies[i] for i in idx},
            offsets=[offsets[i] for i in idx],
            rate=rate / workers,
            duration=duration,
            cap=None if cap is None else cap // workers + (w < cap % workers),
            stall_limit=stall_limit,
            early_stop=early_stop,
        )
        mine, theirs = ctx.Pipe()
        proc = ctx.Process(target=_main, args=(job, theirs, stop), name=f"bench-worker-{w}")
        proc.start()
        theirs.close()
        conns.append(mine)
        procs.append(proc)
    loop = asyncio.get_running_loop()
    collector = loop.run_in_executor(None, _collect, conns, procs)
    interrupted = False
    try:
        await asyncio.shield(collector)
    except asyncio.CancelledError:
        interrupted = True
        stop.set()
        await collector
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
    bench.t0, outcomes = collector.result()
    _merge(bench, outcomes)
    if interrupted:
        raise asyncio.CancelledError


def _collect(conns: list[Connection], procs: list[Any]) -> tuple[float, list[Outcome]]:
    """Wait for every worker to be ready, start them together, then read their outcomes;
    (the shared start, the outcomes). A worker that dies mid-run loses only its own requests
    in flight (left unsent) and ends the run as a fatal error."""
    for conn, proc in zip(conns, procs, strict=True):
        try:
            conn.recv()
        except EOFError:
            proc.join(5)
            raise BenchError(
                f"{proc.name} exited ({proc.exitcode}) before it was ready",
                "read its error above; or run with --num-workers 1",
                EXIT_RUNTIME,
            ) from None
    t0 = time.perf_counter() + _START_IN_S
    for conn in conns:
        conn.send(t0)
    outcomes = []
    for conn, proc in zip(conns, procs, strict=True):
        try:
            outcomes.append(conn.recv())
        except EOFError:
            proc.join(5)
            why = f"{proc.name} exited ({proc.exitcode}) during the run"
            outcomes.append(Outcome([], fatal=(why, "read its error above", EXIT_RUNTIME)))
    return t0, outcomes


def _merge(bench: Any, outcomes: list[Outcome]) -> None:
    by_index = {r.index: r for o in outcomes for r in o.records}
    bench.records[:] = [by_index.get(r.index, r) for r in bench.records]  # a dead worker's: unsent
    bench.early_stopped = any(o.early_stopped for o in outcomes)
    bench.stalled = [by_index[i] for o in outcomes for i in o.stalled]
    bench.stall_s = max((o.stall_s for o in outcomes if o.stall_s is not None), default=None)
    bench.max_inflight = sum(o.max_inflight for o in outcomes)  # peaks may not coincide: <=
    first = next((o.fatal for o in outcomes if o.fatal), None)
    if first is not None and bench.fatal is None:
        bench.fatal = BenchError(*first)


def per_worker(records: Sequence[RequestRecord], workers: int) -> list[dict[str, Any]]:
    """Per worker: requests sent and completed, the rate it offered (achieved_rate: from its
    sends) and its dispatch lag."""
    out = []
    for w, idx in enumerate(shares(len(records), workers)):
        sent = [records[i] for i in idx if records[i].status != "pending"]
        out.append(
            {
                "worker": w,
                "sent": len(sent),
                "completed": sum(r.ok for r in sent),
                "achieved_request_rate": achieved_rate(sent),
                "dispatch_lag_ms": dispatch_lag_ms(sent),
            }
        )
    return out
