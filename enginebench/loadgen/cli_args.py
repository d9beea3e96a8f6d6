"""The `enginebench bench` flags: `vllm bench serve`'s names and meanings, plus ours."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, NoReturn

from enginebench.loadgen import workers
from enginebench.loadgen.arrivals import RAMP_STRATEGIES, Ramp
from enginebench.loadgen.client import IGNORE_EOS_STYLES
from enginebench.loadgen.datasets import PREFIX_ORDERS
from enginebench.loadgen.errors import EXIT_USAGE, BenchError
from enginebench.loadgen.metrics import GOODPUT_METRICS, PERCENTILE_METRICS, PERCENTILES
from enginebench.loadgen.traces import FORMATS, MOONCAKE_BLOCK_LEN
from enginebench.points import Mode, SweepPoint, parse_name, point_name

DEFAULT_NUM_PROMPTS = 1000  # vLLM's


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (problem + how to get help), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; fix: see `{self.prog} --help`\n")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'inf': {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (or inf), got {text}")
    return value


def _workers(text: str) -> int | str:
    return text if text == "auto" else _positive_int(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or math.isnan(value):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="enginebench bench",
        description="Load generator for OpenAI-compatible servers (vllm bench serve flags).",
    )
    srv = p.add_argument_group("server")
    srv.add_argument("--base-url", help="server URL, e.g. http://127.0.0.1:8000")
    srv.add_argument("--host", default="127.0.0.1", help="used when --base-url is not given")
    srv.add_argument("--port", type=int, default=8000, help="used when --base-url is not given")
    srv.add_argument(
        "--endpoint",
        default="/v1/completions",
        help="/v1/completions, or a path ending in chat/completions for chat",
    )
    srv.add_argument("--model", help="model name sent to the server (default: its first model)")
    srv.add_argument("--tokenizer", help="local HF tokenizer directory (default: --model if a dir)")
    srv.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="read the bearer token from this environment variable (never saved)",
    )
    srv.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="per-request timeout in seconds (default: 30 minutes; vLLM's is 6 hours)",
    )
    srv.add_argument(
        "--stall-timeout",
        type=_non_negative_float,
        default=None,
        metavar="S",
        help="stop the point when the server sends nothing for any request in flight for S "
        "seconds (default: 120, or 10x the slowest token gap and 3x the slowest TTFT seen, if "
        "longer; 0: never); those requests fail as stalled, exit status 4",
    )
    srv.add_argument(
        "--no-model-check",
        action="store_true",
        help="do not check --model against /v1/models before the run",
    )
    srv.add_argument(
        "--extra-body",
        type=json.loads,
        default=None,
        help="JSON object merged into every request body",
    )
    srv.add_argument("--temperature", type=float, default=None)

    ds = p.add_argument_group("dataset")
    ds.add_argument(
        "--dataset-name",
        choices=("random", "sharegpt", "fixed", "trace", "sessions"),
        default="random",
        help="sessions: multi-turn, each turn's prompt the session's history and a new message",
    )
    ds.add_argument(
        "--dataset-path",
        help="ShareGPT JSON file (--dataset-name sharegpt), or a request trace (trace: Mooncake "
        "JSONL or Azure CSV)",
    )
    ds.add_argument(
        "--num-prompts",
        type=_positive_int,
        default=None,
        help="default: 1000, or every row of --prompts-file",
    )
    ds.add_argument("--random-input-len", type=int, default=1024)
    ds.add_argument("--random-output-len", type=int, default=128)
    ds.add_argument("--random-range-ratio", type=float, default=0.0)
    ds.add_argument(
        "--random-prefix-len",
        type=_non_negative_int,
        default=0,
        help="random tokens shared by every prompt, before its own input (prefix caching)",
    )
    ds.add_argument(
        "--random-prefix-groups",
        type=_positive_int,
        default=1,
        help="that many different prefixes, each shared by its group of prompts (prefix groups)",
    )
    ds.add_argument(
        "--random-prefix-order",
        choices=PREFIX_ORDERS,
        default=PREFIX_ORDERS[0],
        help="how the groups' prompts follow each other: seeded random order, or round-robin",
    )
    ds.add_argument("--trace-format", choices=FORMATS, default=None, help="default: by suffix")
    ds.add_argument(
        "--trace-start",
        type=_non_negative_float,
        default=0.0,
        metavar="S",
        help="replay the trace's requests from S seconds into it",
    )
    ds.add_argument(
        "--trace-duration",
        type=_positive_float,
        default=None,
        metavar="S",
        help="replay S seconds of the trace (default: to its end)",
    )
    ds.add_argument(
        "--trace-input-scale",
        type=_positive_float,
        default=1.0,
        help="multiply the trace's prompt lengths and its blocks by this (a small model)",
    )
    ds.add_argument(
        "--trace-output-scale",
        type=_positive_float,
        default=1.0,
        help="multiply the trace's output lengths by this",
    )
    ds.add_argument(
        "--trace-block-len",
        type=_positive_int,
        default=MOONCAKE_BLOCK_LEN,
        help="tokens per hash id of a Mooncake trace (its README: 512)",
    )
    ds.add_argument(
        "--trace-copy",
        type=_non_negative_int,
        default=0,
        metavar="K",
        help="draw the trace's prompts as its K-th copy: other tokens, the same reuse (a sweep "
        "replays a fresh copy at each point)",
    )
    ds.add_argument(
        "--max-model-len",
        type=_positive_int,
        default=None,
        help="the model's context, checked against each trace request before any is sent "
        "(default: max_position_embeddings of the tokenizer's config.json)",
    )
    ds.add_argument(
        "--session-turns",
        type=_positive_int,
        default=4,
        metavar="T",
        help="sessions: turns of each (--num-prompts / T sessions); each turn's new message is "
        "--random-input-len tokens, its answer --random-output-len",
    )
    ds.add_argument("--sharegpt-output-len", type=_positive_int, default=None)
    ds.add_argument("--fixed-output-len", type=_positive_int, default=128)
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument(
        "--prompts-file",
        metavar="PATH",
        help="replay a materialized prompt file (JSONL) instead of a dataset",
    )
    ds.add_argument(
        "--prompt-offset",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="start at row N of --prompts-file (a sweep gives each point fresh rows)",
    )
    ds.add_argument(
        "--save-prompts",
        metavar="PATH",
        help="only materialize the dataset to PATH (JSONL) and exit; no server",
    )

    load = p.add_argument_group("load")
    load.add_argument(
        "--request-rate",
        type=_rate,
        default=None,
        help="requests/s of the open loop, or inf (default: inf)",
    )
    load.add_argument(
        "--ramp-up-strategy",
        choices=RAMP_STRATEGIES,
        default=None,
        help="open loop whose rate rises over the point from --ramp-up-start-rps to "
        "--ramp-up-end-rps (as vllm bench serve; instead of --request-rate)",
    )
    load.add_argument("--ramp-up-start-rps", type=_rate, default=None, metavar="R")
    load.add_argument("--ramp-up-end-rps", type=_rate, default=None, metavar="R")
    load.add_argument(
        "--trace-speedup",
        type=_positive_float,
        default=None,
        metavar="X",
        help="replay --dataset-name trace at its own arrival times, X times faster (1: as "
        "recorded)",
    )
    load.add_argument(
        "--burstiness",
        type=_rate,
        default=1.0,
        help="Gamma shape of the gaps: 1 Poisson, inf constant",
    )
    load.add_argument(
        "--max-concurrency",
        type=_positive_int,
        default=None,
        help="cap on requests in flight on top of the rate (client-side queue)",
    )
    load.add_argument(
        "--num-workers",
        type=_workers,
        default="auto",
        help="processes that send the open loop's requests: one schedule (same seed, same send "
        "times) split among them, one summary (auto: one per 1,000 req/s offered, at most the "
        "CPUs less one; 1 for a burst, a trace or a closed loop)",
    )
    load.add_argument(
        "--concurrency",
        type=_positive_int,
        default=None,
        help="closed loop: N users, each sends its next request when one returns",
    )
    load.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        help="send no new request after SECONDS (in-flight ones finish and count)",
    )
    load.add_argument(
        "--think-time",
        type=_non_negative_float,
        default=0.0,
        metavar="S",
        help="sessions: seconds a user waits between an answer and its next turn (mean)",
    )
    load.add_argument(
        "--think-time-dist",
        choices=("constant", "exponential"),
        default="constant",
        help="sessions: every think time --think-time, or exponential with that mean (seeded)",
    )
    load.add_argument("--num-warmups", type=_non_negative_int, default=0)
    load.add_argument(
        "--early-stop",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stop an open-loop point once it is clearly over-saturated (recorded as such)",
    )
    load.add_argument(
        "--reference-records",
        action="append",
        default=[],
        metavar="JSONL",
        help="per-request records (--save-result's JSONL) of an earlier run against the same "
        "server: their streams give the early stop the server's unloaded pace (a sweep passes "
        "its earlier points'); repeat",
    )
    load.add_argument("--no-stream", action="store_true", help="ask for non-streamed responses")
    load.add_argument(
        "--ignore-eos", action="store_true", help="ask for exactly the dataset's output length"
    )
    load.add_argument("--ignore-eos-style", choices=IGNORE_EOS_STYLES, default="ignore_eos")

    res = p.add_argument_group("results")
    res.add_argument(
        "--percentile-metrics",
        default="ttft,tpot,itl,e2el",
        help=f"comma-separated, of: {','.join(PERCENTILE_METRICS)}",
    )
    res.add_argument("--metric-percentiles", default=",".join(map(str, PERCENTILES)))
    res.add_argument(
        "--goodput",
        nargs="+",
        metavar="KEY:MS",
        help="SLOs in ms, e.g. ttft:500 tpot:50 (keys: ttft, tpot, e2el)",
    )
    res.add_argument("--save-result", action="store_true")
    res.add_argument("--result-dir", default=None)
    res.add_argument("--result-filename", default=None)
    res.add_argument("--metadata", nargs="*", metavar="KEY=VALUE", default=[])
    res.add_argument(
        "--point",
        metavar="NAME",
        help="the sweep point this run measures (rate-2, rate-inf, conc-4, rate-1-r2), recorded as "
        "the summary's `point` (name, mode, load, repeat); it must be this run's load",
    )
    res.add_argument(
        "--provenance-file",
        metavar="JSON",
        help="a JSON object recorded as the summary's `provenance`, with this run's own "
        "`started` and `finished`",
    )
    res.add_argument(
        "--max-failed-fraction",
        type=float,
        default=0.0,
        help="exit 3 when more than this fraction of requests failed (default 0)",
    )
    res.add_argument(
        "--min-duration",
        type=float,
        default=5.0,
        metavar="S",
        help="flag a point shorter than S seconds as too_short (default 5)",
    )
    res.add_argument(
        "--gpu-telemetry",
        choices=("auto", "off"),
        default="auto",
        help="sample GPU power, memory and utilization through NVML during the measured window "
        "(auto: when NVML answers; the GPUs of CUDA_VISIBLE_DEVICES, else all)",
    )
    res.add_argument(
        "--server-metrics",
        metavar="PATH",
        help="the server's Prometheus endpoint (e.g. /metrics), scraped before and after the "
        "measured window and each second during it: its token, prefix-cache and preemption "
        "counters and its KV-cache and queue gauges go into the summary (server_*)",
    )
    res.add_argument(
        "--host-interference",
        choices=("auto", "off"),
        default="auto",
        help="sample, during the measured window, the CPU time of processes other than the "
        "server's and this one's (and other processes on the server's GPUs, through NVML): "
        "past 10%% of the machine the point is flagged disturbed (auto: the server's processes "
        "from --server-pid, else the listener on the URL's port when the server is local)",
    )
    res.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        metavar="PID",
        help="a process of the server (with its descendants), for --host-interference; repeat",
    )
    res.add_argument("--disable-tqdm", action="store_true")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse and check the flags; raises `BenchError` (one line) on a bad combination."""
    args = build_parser().parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    args.percentile_metrics = _metric_names(args.percentile_metrics)
    args.metric_percentiles = _percentiles(args.metric_percentiles)
    args.goodput = parse_goodput(args.goodput or [])
    args.metadata = parse_metadata(args.metadata or [])
    if args.extra_body is not None and not isinstance(args.extra_body, dict):
        raise BenchError(
            "--extra-body must be a JSON object", "pass e.g. --extra-body '{\"top_k\": 1}'"
        )
    if args.trace_speedup is not None and (
        args.concurrency is not None or args.request_rate is not None
    ):
        raise BenchError(
            "--trace-speedup (the trace's own times) excludes --request-rate and --concurrency",
            "use one of them",
        )
    if args.trace_speedup is not None and args.dataset_name != "trace":
        raise BenchError(
            "--trace-speedup replays a trace", "add --dataset-name trace --dataset-path FILE"
        )
    if args.dataset_name == "trace" and not (args.dataset_path or args.prompts_file):
        raise BenchError(
            "--dataset-name trace needs a trace file", "pass --dataset-path TRACE.jsonl|.csv"
        )
    if args.dataset_name == "sessions" and args.concurrency is None and not args.save_prompts:
        raise sessions_closed_loop()
    if args.concurrency is not None and (
        args.request_rate is not None or args.max_concurrency is not None
    ):
        raise BenchError(
            "--concurrency (closed loop) cannot be combined with --request-rate/--max-concurrency",
            "use either --concurrency N or --request-rate R [--max-concurrency C]",
        )
    args.ramp = _ramp(args)
    if args.request_rate is None:
        args.request_rate = math.inf
    args.point = _point(args)
    args.provenance = _provenance(args.provenance_file)
    if args.num_prompts is None and not args.prompts_file and args.dataset_name != "trace":
        args.num_prompts = DEFAULT_NUM_PROMPTS  # a trace: every request of its window
    if args.dataset_name in ("random", "fixed", "sessions") and not args.prompts_file:
        args.ignore_eos = True  # as vllm bench serve: synthetic prompts run to their length
    if not 0.0 <= args.max_failed_fraction <= 1.0:
        raise BenchError(
            f"--max-failed-fraction {args.max_failed_fraction} is outside [0, 1]", "use 0..1"
        )
    if args.dataset_path and args.dataset_name not in ("sharegpt", "trace"):
        raise BenchError(
            f"--dataset-path is only read by --dataset-name sharegpt or trace (got "
            f"{args.dataset_name})",
            "add --dataset-name sharegpt or trace, or drop --dataset-path",
        )
    if args.prompt_offset and not args.prompts_file:
        raise BenchError("--prompt-offset needs --prompts-file", "add --prompts-file or drop it")
    if args.random_prefix_len and args.dataset_name != "random":
        raise BenchError(
            f"--random-prefix-len is only read by --dataset-name random (got {args.dataset_name})",
            "drop --random-prefix-len",
        )
    if args.random_prefix_groups > 1 and not args.random_prefix_len:
        raise BenchError(
            f"--random-prefix-groups {args.random_prefix_groups} has no prefix to share",
            "add --random-prefix-len N (N > 0)",
        )
    if args.prompts_file and args.save_prompts:
        raise BenchError("--prompts-file and --save-prompts exclude each other", "use one")
    args.num_workers = _num_workers(args)


def _num_workers(args: argparse.Namespace) -> int:
    """`--num-workers`, resolved (auto) and checked against the load."""
    open_loop = not args.concurrency and args.dataset_name != "sessions"
    if args.num_workers != "auto":
        workers.check(args.num_workers, args.max_concurrency, open_loop)
        return int(args.num_workers)
    if not open_loop or args.trace_speedup is not None:
        return 1
    rate = args.ramp.end if args.ramp is not None else args.request_rate
    return workers.auto_workers(rate, args.max_concurrency)


def sessions_closed_loop() -> BenchError:
    """Multi-turn sessions without --concurrency (their flags, or a prompt file of sessions)."""
    return BenchError(
        "multi-turn sessions run closed loop",
        "pass --concurrency N (N users, each running its sessions one after another)",
    )


def _ramp(args: argparse.Namespace) -> Ramp | None:
    """`--ramp-up-*`, checked (vllm bench serve's rules): a rising open-loop rate, or None."""
    given = [args.ramp_up_start_rps is not None, args.ramp_up_end_rps is not None]
    if args.ramp_up_strategy is None:
        if any(given):
            raise BenchError("--ramp-up-start/end-rps need --ramp-up-strategy", "add it")
        return None
    if not all(given):
        raise BenchError(
            "--ramp-up-strategy needs --ramp-up-start-rps and --ramp-up-end-rps", "add both"
        )
    if args.request_rate is not None or args.concurrency is not None:
        raise BenchError(
            "a ramp sets the rate itself", "drop --request-rate/--concurrency beside --ramp-up-*"
        )
    start, end = args.ramp_up_start_rps, args.ramp_up_end_rps
    if not start <= end or math.isinf(end):
        raise BenchError(
            f"--ramp-up-start-rps {start:g} must be at most --ramp-up-end-rps {end:g}, both finite",
            "pass a start below the end",
        )
    return Ramp(args.ramp_up_strategy, start, end)


def _point(args: argparse.Namespace) -> SweepPoint | None:
    """`--point`, checked against the run's own load (a summary never names another point)."""
    if args.point is None:
        return None
    point = parse_name(args.point)
    if point is None:
        raise BenchError(
            f"--point {args.point!r} is not a point name",
            "pass e.g. rate-2, conc-4, trace-1 or rate-1-r2",
        )
    mode: Mode = "concurrency" if args.concurrency else "rate"
    load = float(args.concurrency) if args.concurrency else args.request_rate
    if args.trace_speedup is not None:
        mode, load = "trace", args.trace_speedup
    elif args.ramp is not None:  # a ramp's point is named for the rate it rises to
        load = args.ramp.end
    if (point.mode, point.load) != (mode, load):
        raise BenchError(
            f"--point {args.point} is not this run's load ({point_name(mode, load)})",
            "pass the name of the point this run measures",
        )
    return point


def _provenance(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"--provenance-file {path}: {exc}", "pass a JSON file") from None
    if not isinstance(data, dict):
        raise BenchError(f"--provenance-file {path} is not a JSON object", "pass an object")
    return data


def _metric_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in PERCENTILE_METRICS]
    if bad or not names:
        raise BenchError(
            f"--percentile-metrics: unknown metric(s) {', '.join(bad) or '(none)'}",
            f"use a comma-separated subset of {','.join(PERCENTILE_METRICS)}",
        )
    return names


def _percentiles(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BenchError(
            f"--metric-percentiles {text!r} is not a list of numbers", "pass e.g. 50,90,99"
        ) from None
    bad = [v for v in values if not 0 <= v <= 100]  # as numpy (and so vLLM): p0/p100 = min/max
    if bad or not values:
        raise BenchError(
            f"--metric-percentiles: {bad or text!r} outside [0, 100]",
            "use percentiles from 0 to 100, e.g. 50,90,99",
        )
    return values


def parse_goodput(pairs: list[str]) -> dict[str, float]:
    slo: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if not sep or name not in GOODPUT_METRICS or not ms >= 0:
            raise BenchError(
                f"--goodput {pair!r} is not KEY:MS with KEY in {', '.join(GOODPUT_METRICS)}",
                "pass e.g. --goodput ttft:500 tpot:50 (milliseconds, >= 0)",
            )
        slo[name] = ms
    return slo


def parse_metadata(items: list[str]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"--metadata {item!r} is not KEY=VALUE", "pass e.g. --metadata tp=1")
        meta[key.strip()] = value.strip()
    return meta


def base_url(args: argparse.Namespace) -> str:
    return (args.base_url or f"http://{args.host}:{args.port}").rstrip("/")
