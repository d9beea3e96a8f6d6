"""The columns of each table, from the registry (enginebench.metric_registry): identity and
provenance columns placed per table, metric columns by the registry's views, in its order.

The per-engine table is the "seed-002" layout: offered load, then the engine view's metrics
(counts, duration, token totals, throughputs, P50/P90/P99 TTFT and TPOT, validity, the engine's
own account), then provenance. Its CSV also carries the rest of each point's provenance
(registry.DETAILS), left out of the Markdown and HTML to keep them readable.
"""

from __future__ import annotations

import pandas as pd

from enginebench.metric_registry import DETAILS, Column, columns, in_view

# header of the offered-load column, by the modes present in the table
RATE_HEADER = "request-rate (req/s)"
CONC_HEADER = "concurrency"
TRACE_HEADER = "trace speed-up (x)"  # a replay at the trace's own times, this many times faster
MIXED_HEADER = "request-rate (req/s) / concurrency"

PROVENANCE = columns(
    ["engine", "engine_version", "engine_commit", "model", "model_sha", "quant", "sweep"]
)


def engine_columns(load_header: str) -> list[Column]:
    """The per-engine table as shown (Markdown, HTML)."""
    metrics = [m.column() for m in in_view("engine")]
    repeats = Column("repeats", "repeats", "int")
    return [Column(load_header, "load_label", "load"), repeats, *metrics, *PROVENANCE]


def engine_csv_columns(load_header: str) -> list[Column]:
    """The per-engine table's CSV: the shown columns, then DETAILS."""
    return [*engine_columns(load_header), *(m.column() for m in DETAILS)]


# capacity: one row per engine x model x quant x sweep (open-loop points only)
CAPACITY = [
    *columns(["model", "engine", "quant", "sweep"]),
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


def comparison_columns() -> list[Column]:
    """The cross-engine comparison: one row per engine x model x quant x sweep x point."""
    return [
        *columns(["model"]),
        Column(RATE_HEADER, "rate", "load"),
        Column(CONC_HEADER, "concurrency", "load"),
        Column(TRACE_HEADER, "replay", "load", optional=True),
        *columns(["engine", "quant", "sweep", "engine_version"]),
        Column("repeats", "repeats", "int"),
        *(m.column() for m in in_view("comparison")),
    ]


def present(cols: list[Column], frame: pd.DataFrame) -> list[Column]:
    """The columns less the optional ones no row has a value for (GPU figures on a CPU)."""
    return [c for c in cols if not c.optional or (c.key in frame and frame[c.key].notna().any())]
