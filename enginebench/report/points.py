"""Sweep points: `rate-<r>` (open loop, Poisson arrivals at r req/s; `rate-inf` sends all at
once) and `conc-<n>` (closed loop, n requests in flight); `-r<k>` after the name is the k-th
repeat of a sweep with `repeats`. Naming, parsing and ordering."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Mode = Literal["rate", "concurrency"]

_POINT = re.compile(r"^(rate|conc)-(inf|\d+(?:\.\d+)?)(?:-r(\d+))?$")


@dataclass(frozen=True, order=False)
class SweepPoint:
    mode: Mode
    load: float  # offered request rate (req/s, may be inf) or concurrency
    repeat: int = 0  # 1..N in a sweep with `repeats: N`; 0 without

    @property
    def label(self) -> str:
        """File stem: `rate-1`, `rate-0.5`, `rate-inf`, `conc-4`, `rate-1-r2`."""
        return point_name("rate" if self.mode == "rate" else "conc", self.load, self.repeat)

    def sort_key(self) -> tuple[int, float, int]:
        """Open-loop points first, each mode by increasing load, `inf` last, then repeats."""
        return (0 if self.mode == "rate" else 1, self.load, self.repeat)


def point_name(prefix: str, load: float, repeat: int = 0) -> str:
    """The one spelling of a point's name (its result files' stem), for the sweep, the
    workflow and the report: `rate-1`, `conc-4`, `rate-2.5-r3`."""
    return f"{prefix}-{format_load(load)}" + (f"-r{repeat}" if repeat else "")


def format_load(load: float) -> str:
    """`1.0` -> `1`, `0.5` -> `0.5`, `inf` -> `inf`."""
    if math.isinf(load):
        return "inf"
    return str(int(load)) if float(load).is_integer() else f"{load:g}"


def parse_point(stem: str) -> SweepPoint | None:
    """`rate-2` / `rate-inf` / `conc-8` / `rate-2-r3` -> SweepPoint; anything else -> None."""
    found = _POINT.match(stem)
    if not found:
        return None
    mode: Mode = "rate" if found.group(1) == "rate" else "concurrency"
    return SweepPoint(mode, float(found.group(2)), int(found.group(3) or 0))


def _as_float(value: Any) -> float | None:
    try:
        return float(value)  # also "inf"
    except (TypeError, ValueError):
        return None


def point_of(path: Path, summary: dict[str, Any] | None = None) -> SweepPoint:
    """The sweep point of a summary file: from its name, else from the summary's own keys
    (`concurrency` / `max_concurrency` for closed loop, else `request_rate`)."""
    named = parse_point(path.stem)
    if named is not None:
        return named
    summary = summary or {}
    for key in ("concurrency", "max_concurrency"):
        conc = _as_float(summary.get(key))
        if conc is not None and summary.get("request_rate") in (None, "inf", math.inf):
            return SweepPoint("concurrency", conc)
    rate = _as_float(summary.get("request_rate"))
    if rate is None:
        raise ValueError(
            f"{path}: cannot tell its sweep point (name rate-<r>.json or conc-<n>.json)"
        )
    return SweepPoint("rate", rate)
