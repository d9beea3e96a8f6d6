"""Sweep points, the one type the sweep runner, the plan and the report share.

A point is open loop at `load` req/s (`rate-<r>`; `rate-inf` sends all at once), closed loop
with `load` requests in flight (`conc-<n>`), or a request trace replayed at its own times, `load`
times faster (`trace-<x>`); `-r<k>` after the name is the k-th repeat of a sweep with `repeats`.
`point_name` is the one spelling of a name: result files, the workflow's paths and the report's
rows all come from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from enginebench.slo_search import Search

Mode = Literal["rate", "concurrency", "trace"]  # also the tidy table's `mode` column
MODES: tuple[Mode, ...] = ("rate", "concurrency", "trace")  # in the order tables list them

_PREFIX: dict[str, Mode] = {"rate": "rate", "conc": "concurrency", "trace": "trace"}
_NAME = re.compile(r"^(rate|conc|trace)-(inf|\d+(?:\.\d+)?)(?:-r(\d+))?$")


@dataclass(frozen=True)
class SweepPoint:
    mode: Mode
    load: float  # offered request rate (req/s, may be inf), concurrency or trace speed-up
    num_prompts: int = 0  # requests the point sends (0: unknown, a point read from a name)
    burstiness: float = 1.0
    max_concurrency: int | None = None  # rate points: cap on requests in flight
    duration: float | None = None  # concurrency points: stop sending after this many seconds
    repeat: int = 0  # 1..N in a sweep with `repeats: N`; 0 without

    @property
    def name(self) -> str:
        """`rate-1`, `rate-2.5`, `rate-inf`, `conc-4`, `rate-1-r2` (the result file's stem)."""
        return point_name(self.mode, self.load, self.repeat)

    def sort_key(self) -> tuple[int, float, int]:
        """Open-loop points first, then closed loop, then replays, each mode by increasing load,
        `inf` last, then repeats."""
        return (MODES.index(self.mode), self.load, self.repeat)


def point_name(mode: Mode, load: float, repeat: int = 0) -> str:
    """The one spelling of a point's name: `rate-1`, `conc-4`, `trace-2`, `rate-2.5-r3`."""
    prefix = "conc" if mode == "concurrency" else mode
    return f"{prefix}-{format_load(load)}" + (f"-r{repeat}" if repeat else "")


def format_load(load: float) -> str:
    """`1.0` -> `1`, `0.5` -> `0.5`, `inf` -> `inf`."""
    if math.isinf(load):
        return "inf"
    return str(int(load)) if float(load).is_integer() else f"{load:g}"


def parse_name(stem: str) -> SweepPoint | None:
    """`rate-2` / `rate-inf` / `conc-8` / `trace-1` / `rate-2-r3` -> SweepPoint; anything else
    -> None."""
    found = _NAME.match(stem)
    if not found:
        return None
    return SweepPoint(
        _PREFIX[found.group(1)], float(found.group(2)), repeat=int(found.group(3) or 0)
    )


def parse_spec(spec: str, defaults: Mapping[str, Any] | None = None) -> SweepPoint:
    """`rate=2.5,num_prompts=64,burstiness=1` or `conc=4,num_prompts=16` -> SweepPoint."""
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"sweep point {spec!r}: {part!r} is not KEY=VALUE")
        fields[key.strip().replace("-", "_")] = value.strip()
    d = dict(defaults or {})
    modes = [m for m in ("rate", "conc") if m in fields]
    if len(modes) != 1:
        raise ValueError(f"sweep point {spec!r}: give exactly one of rate=R or conc=N")
    mode = modes[0]
    load = float(fields.pop(mode))
    if not load > 0 or (mode == "conc" and (math.isinf(load) or not load.is_integer())):
        raise ValueError(
            f"sweep point {spec!r}: {mode} must be > 0 ({'an integer' * (mode == 'conc')})"
        )
    known = {"num_prompts", "burstiness", "max_concurrency", "duration"}
    if unknown := set(fields) - known:
        raise ValueError(f"sweep point {spec!r}: unknown keys {sorted(unknown)}")
    num = fields.get("num_prompts", d.get("num_prompts"))
    if num is None:
        raise ValueError(f"sweep point {spec!r}: num_prompts is required (or a default)")
    mc = fields.get("max_concurrency", d.get("max_concurrency"))
    dur = fields.get("duration", d.get("duration"))
    return SweepPoint(
        mode=_PREFIX[mode],
        load=load,
        num_prompts=int(num),
        burstiness=float(fields.get("burstiness", d.get("burstiness", 1.0))),
        max_concurrency=None if mc is None else int(mc),
        duration=None if dur is None else float(dur),
    )


def points_from_config(sweep: Mapping[str, Any]) -> list[SweepPoint]:
    """A config sweep -> its points, rates (in listed order) then concurrencies; with
    `repeats: N`, that list N times over (interleaved: a slow drift of the machine spreads over
    every point instead of biasing the last ones), each repeat named `-r<k>`."""
    rate_n = int(sweep["num_prompts"])
    conc_n = int(sweep.get("concurrency_num_prompts", rate_n))
    burstiness = float(sweep.get("burstiness", 1.0))
    points = [
        SweepPoint("rate", float(r), rate_n, burstiness, sweep.get("max_concurrency"))
        for r in sweep.get("request_rates", [])
    ]
    points += [
        SweepPoint("concurrency", float(c), conc_n, duration=sweep.get("concurrency_duration"))
        for c in sweep.get("concurrency", [])
    ]
    # a replay sends the trace window's requests, from the trace itself (none of the prompt file)
    points += [SweepPoint("trace", float(x)) for x in sweep.get("trace_speedups", [])]
    repeats = int(sweep.get("repeats", 1))
    if repeats > 1:
        points = [replace(p, repeat=k) for k in range(1, repeats + 1) for p in points]
    return points


def prompt_rows(points: Sequence[SweepPoint], warmups: int) -> tuple[list[int], int]:
    """(first row of each point in the prompt file, rows the sweep needs).

    The warm-up takes rows [0, warmups) and each point the next `num_prompts`, in the order they
    run: within one server's lifetime no request repeats a prompt the server has seen (its prefix
    cache would answer it). The rows depend only on this sweep's definition, and every engine
    gets the same rows at the same point.
    """
    offsets, row = [], warmups
    for point in points:
        offsets.append(row)
        row += point.num_prompts
    return offsets, row


def rows_needed(points: Sequence[SweepPoint], warmups: int, search: Search | None) -> int:
    """Prompt rows a sweep sends: the warm-up, every fixed point, and the adaptive search's
    probes at most (each `num_prompts`)."""
    return prompt_rows(points, warmups)[1] + (search.probes * search.num_prompts if search else 0)
