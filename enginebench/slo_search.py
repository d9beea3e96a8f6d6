"""The adaptive sweep: find the highest request rate that meets an SLO by bisection between two
bounds, within a budget of probes, each probe a recorded sweep point.

A probe meets the SLO when its point is a steady-state measurement (not saturated), no request
failed, and every P99 the SLO names is within it. The search probes the lower bound first (if
that fails, the capacity is below the range), then the upper (if that meets it, the capacity is
at least the range's top), then the geometric middle of the highest rate that met it and the
lowest that did not, until the budget is spent or the two are within 5% of each other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# bounds closer than this ratio are as good as found (run-to-run noise is larger)
RESOLUTION = 1.05


@dataclass(frozen=True)
class Search:
    low: float  # req/s
    high: float
    probes: int  # the most points the search runs
    slo: Mapping[str, float]  # {ttft_ms, tpot_ms}: P99 limits
    num_prompts: int  # per probe
    burstiness: float = 1.0

    @classmethod
    def from_config(cls, sweep: Mapping[str, Any]) -> Search | None:
        """The `search:` of a config sweep (with its `slo`), or None for a fixed sweep."""
        spec = sweep.get("search")
        if not spec:
            return None
        return cls(
            low=float(spec["low"]),
            high=float(spec["high"]),
            probes=int(spec["probes"]),
            slo=dict(sweep["slo"]),
            num_prompts=int(sweep["num_prompts"]),
            burstiness=float(sweep.get("burstiness", 1.0)),
        )


def p99s_within(values: Mapping[str, Any], slo: Mapping[str, float]) -> bool:
    """Every P99 the SLO names (`ttft_ms` -> `p99_ttft_ms`) is measured and within it: a
    summary's or a table row's (None or NaN: not measured)."""
    for key, limit in slo.items():
        value = values.get(f"p99_{key}")
        if value is None or math.isnan(float(value)) or float(value) > limit:
            return False
    return True


def meets(summary: Mapping[str, Any] | None, slo: Mapping[str, float]) -> bool:
    """Whether one point's summary meets the SLO (see the module's docstring)."""
    if not summary or not summary.get("completed") or summary.get("failed"):
        return False
    if "saturated" in (summary.get("validity") or []):
        return False
    return p99s_within(summary, slo)


def _round(rate: float) -> float:
    """Three significant digits: the rate is a point's name."""
    return float(f"{rate:.3g}")


def next_rate(tried: Mapping[float, bool], search: Search) -> float | None:
    """The next rate to probe given the probes so far (rate -> met the SLO), or None: done."""
    if len(tried) >= search.probes:
        return None
    for bound, done_if in ((search.low, False), (search.high, True)):
        if bound not in tried:
            return bound
        if tried[bound] is done_if:
            return None
    best = max(r for r, ok in tried.items() if ok)
    worst = min(r for r, ok in tried.items() if not ok and r > best)
    if worst / best <= RESOLUTION:
        return None
    mid = _round(math.sqrt(best * worst))
    return mid if best < mid < worst and mid not in tried else None


def outcome(tried: Mapping[float, bool], search: Search) -> dict[str, Any]:
    """What the probes found: the highest rate that met the SLO and the lowest above it that
    did not (None: not found within the range); `bounded`: the capacity lies between them."""
    met = [r for r, ok in tried.items() if ok]
    best = max(met) if met else None
    above = [r for r, ok in tried.items() if not ok and (best is None or r > best)]
    return {
        "slo": dict(search.slo),
        "low": search.low,
        "high": search.high,
        "probes": [{"rate": r, "met": ok} for r, ok in tried.items()],
        "slo_capacity": best,
        "first_failing": min(above) if above else None,
        "bounded": best is not None and bool(above),
    }
