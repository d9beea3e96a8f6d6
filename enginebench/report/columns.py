"""Table columns: header text, the loaded-frame key each comes from, and how it is shown.

The per-engine table is the "seed-002" layout: offered load, num-prompts, duration, token
totals, throughputs, P50/P90/P99 TTFT and TPOT, failed requests, short outputs, provenance.
Its CSV also carries the rest of each point's provenance (DETAILS), left out of the Markdown
and HTML to keep them readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# how a cell is formatted in Markdown/HTML (CSV keeps full precision)
Kind = Literal["load", "int", "sec", "req", "tok", "ms", "ratio", "text", "hash"]


@dataclass(frozen=True)
class Column:
    header: str
    key: str
    kind: Kind

    @property
    def numeric(self) -> bool:
        return self.kind not in ("text", "hash")


# header of the offered-load column, by the modes present in the table
RATE_HEADER = "request-rate (req/s)"
CONC_HEADER = "concurrency"
MIXED_HEADER = "request-rate (req/s) / concurrency"
LOAD_HEADERS = (RATE_HEADER, CONC_HEADER, MIXED_HEADER)


def _percentiles(metric: str) -> list[Column]:
    return [Column(f"P{p} {metric.upper()} (ms)", f"p{p}_{metric}_ms", "ms") for p in (50, 90, 99)]


PROVENANCE = [
    Column("engine", "engine", "text"),
    Column("engine version", "engine_version", "text"),
    Column("engine commit", "engine_commit", "hash"),
    Column("model", "model", "text"),
    Column("model sha", "model_sha", "hash"),
    Column("quant", "quant", "text"),
    Column("sweep", "sweep", "text"),
]

# the rest of the provenance, in the per-engine CSV only (load.DETAILS reads them); lists and
# objects are compact JSON text
DETAILS = [
    Column("model source", "model_source", "text"),
    Column("model file sha256", "model_file_sha256", "hash"),
    Column("model path", "model_path", "text"),
    Column("source commit", "source_commit", "hash"),
    Column("workload", "workload", "text"),
    Column("seed", "seed", "text"),
    Column("server argv", "server_argv", "text"),
    Column("server env", "server_env", "text"),
    Column("enginebench version", "enginebench_version", "text"),
    Column("enginebench commit", "enginebench_commit", "hash"),
    Column("enginebench uncommitted changes", "enginebench_dirty", "text"),
    Column("snakemake version", "snakemake_version", "text"),
    Column("host", "hostname", "text"),
    Column("CPU", "cpu_model", "text"),
    Column("usable CPU cores", "cpu_usable_cores", "text"),
    Column("memory (bytes)", "memory_bytes", "text"),
    Column("cgroup memory limit (bytes)", "memory_limit_bytes", "text"),
    Column("GPU", "gpu", "text"),
    Column("GPU driver", "gpu_driver", "text"),
    Column("CUDA version", "cuda_version", "text"),
    Column("started", "started", "text"),
    Column("finished", "finished", "text"),
]

# the engine's own account beside ours (blank where the engine reports none); a cache hit beyond
# the workload's shared prefix marks the row
ENGINE_ACCOUNT = [
    Column("shared prefix (tokens)", "shared_prefix_len", "int"),
    Column("cached prompt tokens (engine)", "engine_cached_prompt_tokens", "int"),
    Column("unrequested cache hits", "requests_with_unrequested_cache_hits", "int"),
    Column("engine P50 TPOT (ms)", "median_engine_decode_ms_per_token", "ms"),
    Column("harness TPOT overhead (ms)", "harness_tpot_overhead_ms", "ms"),
    Column("harness TTFT overhead (ms)", "harness_ttft_overhead_ms", "ms"),
]

# whether the point is a steady-state measurement (enginebench.loadgen.validity): "ok" or the
# flags raised; achieved / offered is the throughput test behind `saturated`
VALIDITY = [
    Column("validity", "validity", "text"),
    Column("achieved / offered", "throughput_ratio", "ratio"),
]

# the per-engine table after its offered-load column
ENGINE_METRICS = [
    Column("num-prompts", "num_prompts", "int"),
    Column("duration (s)", "duration", "sec"),
    Column("total input tokens", "total_input_tokens", "int"),
    Column("total generated tokens", "total_output_tokens", "int"),
    Column("request throughput (req/s)", "request_throughput", "req"),
    Column("input token throughput (tok/s)", "input_throughput", "tok"),
    Column("output token throughput (tok/s)", "output_throughput", "tok"),
    Column("request goodput (req/s)", "request_goodput", "req"),
    Column("output goodput (tok/s)", "output_goodput", "tok"),
    *_percentiles("ttft"),
    *_percentiles("tpot"),
    Column("failed requests", "failed", "int"),
    Column("short outputs", "short_outputs", "int"),
    *VALIDITY,
    *ENGINE_ACCOUNT,
]


def engine_columns(load_header: str) -> list[Column]:
    """The per-engine table as shown (Markdown, HTML)."""
    return [Column(load_header, "load_label", "load"), *ENGINE_METRICS, *PROVENANCE]


def engine_csv_columns(load_header: str) -> list[Column]:
    """The per-engine table's CSV: the shown columns, then DETAILS."""
    return [*engine_columns(load_header), *DETAILS]


# capacity: one row per engine x model x quant x sweep (open-loop points only)
CAPACITY = [
    Column("model", "model", "text"),
    Column("engine", "engine", "text"),
    Column("quant", "quant", "text"),
    Column("sweep", "sweep", "text"),
    Column("capacity (req/s)", "capacity", "load"),
    Column("output token throughput there (tok/s)", "output_throughput", "tok"),
    Column("P99 TTFT there (ms)", "p99_ttft_ms", "ms"),
    Column("P99 TPOT there (ms)", "p99_tpot_ms", "ms"),
    Column("first saturated rate (req/s)", "first_saturated", "load"),
    Column("SLO", "slo", "text"),
    Column("SLO capacity (req/s)", "slo_capacity", "load"),
    Column("request goodput there (req/s)", "request_goodput", "req"),
    Column("output goodput there (tok/s)", "output_goodput", "tok"),
    Column("rates measured", "rates", "text"),
]

# the cross-engine comparison: one row per engine x model x quant x sweep x point
COMPARISON = [
    Column("model", "model", "text"),
    Column(RATE_HEADER, "rate", "load"),
    Column(CONC_HEADER, "concurrency", "load"),
    Column("engine", "engine", "text"),
    Column("quant", "quant", "text"),
    Column("sweep", "sweep", "text"),
    Column("engine version", "engine_version", "text"),
    Column("request throughput (req/s)", "request_throughput", "req"),
    Column("output token throughput (tok/s)", "output_throughput", "tok"),
    Column("P50 TTFT (ms)", "p50_ttft_ms", "ms"),
    Column("P99 TTFT (ms)", "p99_ttft_ms", "ms"),
    Column("P50 TPOT (ms)", "p50_tpot_ms", "ms"),
    Column("P99 TPOT (ms)", "p99_tpot_ms", "ms"),
    Column("engine P50 TPOT (ms)", "median_engine_decode_ms_per_token", "ms"),
    Column("failed requests", "failed", "int"),
    Column("short outputs", "short_outputs", "int"),
    Column("unrequested cache hits", "requests_with_unrequested_cache_hits", "int"),
    Column("validity", "validity", "text"),
]
