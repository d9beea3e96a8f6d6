"""The one registry of result columns: every key of the tidy results table that has a known
meaning (the summary's own keys, vLLM's names where the concept is vLLM's), with its label,
unit, how it is shown, its dtype and which way is better.

The CLI's summary, the per-engine tables, the comparison and the report take their metric
columns from here, in this order, by view: a metric added here with a view shows up there.
Summary keys not listed here still reach the tidy table (as numbers, flags or text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from enginebench.loadgen.metrics import PERCENTILES

# how a cell is formatted in Markdown/HTML/CLI (CSV and Parquet keep full precision)
# sci: small magnitudes in scientific notation (a KL divergence in nats)
Kind = Literal[
    "load", "int", "sec", "req", "tok", "ms", "num", "ratio", "sci", "text", "hash", "flag"
]
Better = Literal["lower", "higher"] | None
# where a metric is shown: the load generator's printed summary (and its engine section), the
# per-engine tables, the cross-engine comparison
View = Literal["cli", "cli_engine", "cli_gpu", "engine", "comparison"]

_DTYPES: dict[str, str] = {"int": "Int64", "flag": "boolean", "text": "object", "hash": "object"}


@dataclass(frozen=True)
class Column:
    """A shown column: its header, the tidy key it reads, how its cells are formatted."""

    header: str
    key: str
    kind: Kind
    optional: bool = False  # left out of a table where no row has a value

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "hash", "flag")


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str = ""
    kind: Kind = "text"
    better: Better = None
    views: tuple[View, ...] = ()
    # measured only on some machines (GPU telemetry): a table without any value leaves it out
    optional: bool = False

    @property
    def header(self) -> str:
        """`P50 TTFT (ms)`, `failed requests`."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def dtype(self) -> str:
        return _DTYPES.get(self.kind, "float64")

    def column(self, header: str | None = None) -> Column:
        return Column(header or self.header, self.key, self.kind, self.optional)


_TABLES: tuple[View, ...] = ("engine", "comparison")


def _percentiles(metric: str, views: dict[int, tuple[View, ...]]) -> list[Metric]:
    return [
        Metric(f"p{p}_{metric}_ms", f"P{p} {metric.upper()}", "ms", "ms", "lower", views.get(p, ()))
        for p in PERCENTILES
    ]


# what identifies a row of the tidy table (one row per engine x model x quant x sweep x point
# x repeat) and where it came from
IDENTITY = [
    Metric("engine", "engine"),  # the instance: its name under the config's `engines:`
    Metric("kind", "engine kind"),  # the engine it is an instance of
    Metric("engine_version", "engine version"),
    Metric("engine_commit", "engine commit", kind="hash"),
    Metric("model", "model"),
    Metric("model_sha", "model sha", kind="hash"),
    Metric("quant", "quant"),
    Metric("sweep", "sweep"),
    Metric("point", "point"),
    Metric("mode", "mode"),  # rate (open loop) | concurrency (closed loop)
    Metric("load", "offered load", kind="load"),  # req/s (inf: all at once) or users
    Metric("repeat", "repeat", kind="int"),  # 0: the sweep has no repeats
    Metric("status", "status"),  # ok | missing | none-completed
]

METRICS = [
    Metric("num_prompts", "num-prompts", kind="int", views=("engine",)),
    Metric("completed", "successful requests", kind="int", better="higher", views=("cli",)),
    Metric("failed", "failed requests", kind="int", better="lower", views=("cli", *_TABLES)),
    Metric("short_outputs", "short outputs", kind="int", better="lower", views=("cli", *_TABLES)),
    Metric("duration", "benchmark duration", "s", "sec", views=("cli", "engine")),
    Metric("total_input_tokens", "total input tokens", kind="int", views=("cli", "engine")),
    Metric("total_output_tokens", "total generated tokens", kind="int", views=("cli", "engine")),
    Metric("achieved_request_rate", "achieved sending rate", "req/s", "req", views=("cli",)),
    # multi-turn sessions (loadgen/runner.py Sessions): TTFT at the first and at the last turn
    Metric(
        "p50_ttft_first_turn_ms",
        "P50 TTFT turn 1",
        "ms",
        "ms",
        "lower",
        ("cli", *_TABLES),
        optional=True,
    ),
    Metric(
        "p50_ttft_last_turn_ms",
        "P50 TTFT last turn",
        "ms",
        "ms",
        "lower",
        ("cli", *_TABLES),
        optional=True,
    ),
    # a trace's replay (loadgen/traces.py): its requests and the span they arrive over
    Metric("trace_requests", "trace requests", kind="int", views=("cli", "engine"), optional=True),
    Metric(
        "trace_span_s", "trace span replayed", "s", "sec", views=("cli", "engine"), optional=True
    ),
    Metric("request_throughput", "request throughput", "req/s", "req", "higher", ("cli", *_TABLES)),
    Metric("request_goodput", "request goodput", "req/s", "req", "higher", ("cli", "engine")),
    Metric("input_throughput", "input token throughput", "tok/s", "tok", "higher", ("engine",)),
    Metric(
        "output_throughput", "output token throughput", "tok/s", "tok", "higher", ("cli", *_TABLES)
    ),
    Metric("output_goodput", "output goodput", "tok/s", "tok", "higher", ("engine",)),
    Metric("total_token_throughput", "total token throughput", "tok/s", "tok", "higher", ("cli",)),
    Metric(
        "max_output_tokens_per_s", "peak output token throughput", "tok/s", "tok", None, ("cli",)
    ),
    Metric("max_concurrent_requests", "peak concurrent requests", kind="int", views=("cli",)),
    *_percentiles("ttft", {50: _TABLES, 90: ("engine",), 99: _TABLES}),
    *_percentiles("tpot", {50: _TABLES, 90: ("engine",), 99: _TABLES}),
    *_percentiles("itl", {}),
    *_percentiles("e2el", {}),
    # whether the point is a steady-state measurement (enginebench.loadgen.validity)
    Metric("validity", "validity", views=_TABLES),
    Metric("throughput_ratio", "achieved / offered", kind="ratio", views=("cli", "engine")),
    # the engine's own account beside ours (blank where the engine reports none)
    Metric("shared_prefix_len", "shared prefix", "tokens", "int", views=("engine",)),
    Metric(
        "engine_reported_requests",
        "requests reporting cached tokens",
        kind="int",
        views=("cli_engine",),
    ),
    Metric(
        "engine_cached_prompt_tokens",
        "cached prompt tokens (engine)",
        kind="int",
        views=("cli_engine", "engine"),
    ),
    Metric(
        "engine_cached_prompt_fraction",
        "cached prompt fraction (engine)",
        kind="ratio",
        views=("cli_engine",),
    ),
    Metric(
        "requests_with_cached_prompt_tokens",
        "requests with cached prompt tokens",
        kind="int",
        views=("cli_engine",),
    ),
    # prefix groups (the workload's expectation, client side) beside the engine's count
    Metric(
        "expected_cached_prompt_tokens",
        "expected cached prompt tokens",
        kind="int",
        views=("cli_engine", "engine"),
        optional=True,
    ),
    Metric(
        "expected_cached_prompt_fraction",
        "expected cached prompt fraction",
        kind="ratio",
        views=("cli_engine", "engine"),
        optional=True,
    ),
    Metric(
        "expected_prefix_served_fraction",
        "expected prefix served from cache (engine)",
        kind="ratio",
        better="higher",
        views=("cli_engine", *_TABLES),
        optional=True,
    ),
    # the engine's own Prometheus metrics over the point (loadgen/server_metrics.py)
    Metric(
        "server_prompt_tokens",
        "prompt tokens (server)",
        kind="int",
        views=("cli_engine", "engine"),
        optional=True,
    ),
    Metric(
        "server_generation_tokens",
        "generated tokens (server)",
        kind="int",
        views=("cli_engine", "engine"),
        optional=True,
    ),
    Metric(
        "server_prefix_cache_hit_rate",
        "prefix cache hit rate (server)",
        kind="ratio",
        views=("cli_engine", *_TABLES),
        optional=True,
    ),
    Metric(
        "server_preemptions",
        "preemptions (server)",
        kind="int",
        better="lower",
        views=("cli_engine", "engine"),
        optional=True,
    ),
    Metric(
        "server_max_kv_cache_usage",
        "peak KV cache use (server)",
        kind="ratio",
        views=("cli_engine", *_TABLES),
        optional=True,
    ),
    Metric(
        "server_max_running",
        "peak running requests (server)",
        kind="int",
        views=("cli_engine", "engine"),
        optional=True,
    ),
    Metric(
        "server_max_waiting",
        "peak waiting requests (server)",
        kind="int",
        views=("cli_engine", *_TABLES),
        optional=True,
    ),
    Metric(
        "unrequested_cached_prompt_tokens",
        "unrequested cached prompt tokens",
        kind="int",
        better="lower",
        views=("cli_engine",),
    ),
    Metric(
        "requests_with_unrequested_cache_hits",
        "unrequested cache hits",
        kind="int",
        better="lower",
        views=("cli_engine", *_TABLES),
    ),
    Metric(
        "median_engine_prompt_ms", "engine P50 prompt time", "ms", "ms", "lower", ("cli_engine",)
    ),
    Metric(
        "median_engine_decode_ms_per_token",
        "engine P50 TPOT",
        "ms",
        "ms",
        "lower",
        ("cli_engine", *_TABLES),
    ),
    Metric(
        "tpot_beyond_engine_ms",
        "TPOT beyond engine TPOT",
        "ms",
        "ms",
        "lower",
        ("cli_engine", "engine"),
    ),
    Metric(
        "ttft_beyond_engine_ms",
        "TTFT beyond engine prompt time",
        "ms",
        "ms",
        "lower",
        ("cli_engine", "engine"),
    ),
]

# GPU telemetry over the measured window (enginebench.loadgen.telemetry), summed over the
# server's GPUs; absent where there is no GPU
_GPU: tuple[View, ...] = ("cli_gpu", "engine", "comparison")
METRICS += [
    Metric("gpu_power_mean_w", "mean GPU power", "W", "num", None, _GPU, optional=True),
    Metric("gpu_power_max_w", "peak GPU power", "W", "num", None, ("cli_gpu",), optional=True),
    Metric("gpu_energy_j", "GPU energy", "J", "num", None, ("cli_gpu", "engine"), optional=True),
    Metric(
        "output_tokens_per_joule",
        "output tokens per joule",
        "tok/J",
        "ratio",
        "higher",
        _GPU,
        optional=True,
    ),
    Metric(
        "gpu_memory_used_max_mib",
        "peak GPU memory used",
        "MiB",
        "num",
        None,
        ("cli_gpu", "engine"),
        optional=True,
    ),
    Metric(
        "gpu_utilization_mean_pct", "mean GPU utilization", "%", "num", None, _GPU, optional=True
    ),
    Metric("gpu_count", "GPUs sampled", kind="int", views=("cli_gpu",), optional=True),
    Metric("gpu_energy_source", "GPU energy source", views=("cli_gpu",), optional=True),
]

# what else ran on the machine during the window (enginebench.loadgen.interference): shares of
# the host's CPUs (0-1); past validity.DISTURBED_SHARE the point is flagged `disturbed`
_HOST: tuple[View, ...] = ("cli_engine", "engine")
METRICS += [
    Metric("host_others_cpu_share", "others' share of the CPUs", kind="ratio",
           better="lower", views=(*_HOST, "comparison"), optional=True),
    Metric("host_steal_share", "CPU steal share", kind="ratio", better="lower", views=_HOST,
           optional=True),
    Metric("host_server_cpu_share", "server's share of the CPUs", kind="ratio", views=_HOST,
           optional=True),
    Metric("host_client_cpu_share", "load generator's share of the CPUs", kind="ratio",
           views=_HOST, optional=True),
    Metric("host_load_max", "peak 1-min load average", kind="num", views=("cli_engine",),
           optional=True),
    Metric("gpu_other_processes", "other processes on the GPUs", kind="int", better="lower",
           views=("cli_gpu", "engine"), optional=True),
    Metric("gpu_others_sm_pct", "others' mean SM utilization", "%", "num", "lower",
           ("cli_gpu", "engine"), optional=True),
    # whose CPU time was the server's: text in every table (a list of pids)
    Metric("host_server_pids", "server processes", optional=True),
    Metric("host_server_pid_source", "server processes found by", optional=True),
]  # fmt: skip

# the rest of each point's provenance (enginebench.report.load.DETAILS reads them); lists and
# objects as compact JSON text; in the per-engine CSV and the tidy table only
DETAILS = [
    Metric("model_source", "model source"),
    Metric("model_file_sha256", "model file sha256", kind="hash"),
    Metric("model_path", "model path"),
    Metric("source_commit", "source commit", kind="hash"),
    Metric("workload", "workload"),
    Metric("seed", "seed"),
    Metric("server_argv", "server argv"),
    Metric("server_env", "server env"),
    Metric("enginebench_version", "enginebench version"),
    Metric("enginebench_commit", "enginebench commit", kind="hash"),
    Metric("enginebench_dirty", "enginebench uncommitted changes"),
    Metric("snakemake_version", "snakemake version"),
    Metric("hostname", "host"),
    Metric("cpu_model", "CPU"),
    Metric("cpu_usable_cores", "usable CPU cores"),
    Metric("memory_bytes", "memory", "bytes"),
    Metric("memory_limit_bytes", "cgroup memory limit", "bytes"),
    Metric("gpu", "GPU"),
    Metric("gpu_driver", "GPU driver"),
    Metric("cuda_version", "CUDA version"),
    Metric("started", "started"),
    Metric("finished", "finished"),
]

REGISTRY: dict[str, Metric] = {m.key: m for m in (*IDENTITY, *METRICS, *DETAILS)}

# the interval a repeated point's mean carries: `<key>` + this suffix holds its half-width
CI_SUFFIX = "_ci95"


def metric(key: str) -> Metric:
    return REGISTRY[key]


def in_view(view: View) -> list[Metric]:
    """The metrics a view shows, in registry order."""
    return [m for m in METRICS if view in m.views]


def columns(keys: list[str]) -> list[Column]:
    return [REGISTRY[k].column() for k in keys]
