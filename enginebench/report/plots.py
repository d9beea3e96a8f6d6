"""Per-model figures from the tidy results table: TTFT and TPOT percentiles vs offered load,
achieved throughput vs offered load, and the Pareto chart (output tokens/s per user against
output tokens/s in total). One line per engine x quant x sweep (colour: engine, marker: quant,
dash: quant, or the sweep where the table holds several); points that are not steady state
hollow; means over repeats with 95% confidence intervals as error bars. PNG and SVG; drawn
without pyplot (no global backend state; Agg)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from enginebench.loadgen.metrics import PERCENTILES
from enginebench.metric_registry import CI_SUFFIX
from enginebench.plan.paths import PLOT_FORMATS, PLOTS, Plot
from enginebench.points import Mode, format_load
from enginebench.report.tables import valid
from enginebench.report.tidy import mean_over_repeats, read_results

PathLike = str | os.PathLike[str]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_DASHES = ("-", "--", "-.", ":")
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _plots(mode: Mode) -> list[Plot]:
    """The plots of one mode's points, the Pareto chart (both modes) last."""
    return [p for p in PLOTS if p.mode in (mode, None)]


def plot_paths(out_dir: PathLike, model: str, mode: Mode = "rate") -> list[Path]:
    """The files `write_plots` writes for one model and mode (enginebench.plan.paths.PLOTS,
    each in PLOT_FORMATS): `<model>-<name>.<fmt>`; the Pareto chart, of both modes, under
    either mode."""
    stem = Path(out_dir) / _safe(model)
    return [Path(f"{stem}-{p.name}.{fmt}") for p in _plots(mode) for fmt in PLOT_FORMATS]


# -- x axis: offered rate with `inf` drawn one step right of the largest finite rate ----------


def _x_positions(loads: Sequence[float]) -> tuple[dict[float, float], bool]:
    """Position of each load on the x axis, and whether the axis is logarithmic
    (finite loads spanning 8x or more)."""
    finite = sorted({x for x in loads if math.isfinite(x)})
    log = len(finite) >= 2 and finite[0] > 0 and finite[-1] / finite[0] >= 8
    pos = {x: x for x in finite}
    if any(math.isinf(x) for x in loads):
        if not finite:
            pos[math.inf] = 1.0
        elif log:
            pos[math.inf] = finite[-1] * 2
        else:
            step = (finite[-1] - finite[0]) / max(len(finite) - 1, 1) or max(finite[-1], 1.0)
            pos[math.inf] = finite[-1] + step
    return pos, log


def _style_x(ax: Axes, pos: dict[float, float], log: bool, xlabel: str) -> None:
    if log:
        ax.set_xscale("log")
    ax.set_xticks(list(pos.values()), [format_load(x) for x in pos])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)


Styles = dict[tuple[str, str, str], dict[str, Any]]


def _styles(frame: pd.DataFrame) -> Styles:
    """Line style per (engine, quant, sweep), from every table: the same line looks the same in
    every figure (colour by engine, marker by quant, dash by quant or, with several sweeps, by
    sweep)."""
    engines = sorted(set(frame["engine"]))
    quants = sorted(set(frame["quant"]))
    sweeps = sorted(set(frame["sweep"]))
    dash_by, dash_keys = (2, sweeps) if len(sweeps) > 1 else (1, quants)
    keys = set(zip(frame["engine"], frame["quant"], frame["sweep"], strict=True))
    return {
        k: {
            "color": _COLORS[engines.index(k[0]) % len(_COLORS)],
            "marker": _MARKERS[quants.index(k[1]) % len(_MARKERS)],
            "linestyle": _DASHES[dash_keys.index(k[dash_by]) % len(_DASHES)],
        }
        for k in keys
    }


def _several_sweeps(frame: pd.DataFrame) -> bool:
    """Whether a figure's rows hold several sweeps (then its labels name the sweep)."""
    return bool(frame["sweep"].nunique() > 1)


def _series(frame: pd.DataFrame, styles: Styles) -> list[tuple[str, pd.DataFrame, dict[str, Any]]]:
    """(label, rows, line style) per engine x quant x sweep, sorted; the sweep is named only
    where the figure holds several."""
    several = _several_sweeps(frame)
    return [
        (
            " · ".join([engine, quant, sweep] if several else [engine, quant]),
            rows.sort_values("load"),
            styles[(engine, quant, sweep)],
        )
        for (engine, quant, sweep), rows in frame.groupby(["engine", "quant", "sweep"], sort=True)
    ]


def _draw(
    ax: Axes,
    rows: pd.DataFrame,
    key: str,
    pos: dict[float, float],
    label: str,
    style: dict[str, Any],
) -> None:
    """Solid (or the quant's dash) over finite loads; dotted on to the `inf` point; a point that
    is not a steady-state measurement (its `validity` names flags) drawn hollow; error bars
    where the rows carry a confidence interval (means over repeats)."""
    xs = [pos[x] for x in rows["load"]]
    ys = list(rows[key])
    if key + CI_SUFFIX in rows:
        errs = [0.0 if math.isnan(e) else e for e in rows[key + CI_SUFFIX].astype(float)]
        ax.errorbar(xs, ys, yerr=errs, fmt="none", ecolor=style["color"], capsize=3, alpha=0.7)
    flagged = [i for i, v in enumerate(rows.get("validity", [None] * len(xs))) if not valid(v)]
    finite = [i for i, x in enumerate(rows["load"]) if math.isfinite(x)]
    measured = [i for i in finite if not math.isnan(ys[i])]
    ax.plot([xs[i] for i in finite], [ys[i] for i in finite], label=label, **style)
    inf_rows = [i for i, x in enumerate(rows["load"]) if math.isinf(x)]
    if inf_rows:
        i = inf_rows[0]
        ax.plot([xs[i]], [ys[i]], color=style["color"], marker=style["marker"], linestyle="none")
        if measured and not math.isnan(ys[i]):
            j = measured[-1]
            ax.plot([xs[j], xs[i]], [ys[j], ys[i]], color=style["color"], linestyle=":", alpha=0.6)
    _hollow(ax, [(xs[i], ys[i]) for i in flagged], style)


def _hollow(ax: Axes, points: Sequence[tuple[float, float]], style: dict[str, Any]) -> None:
    """Draw `points` hollow in the series' style: not a steady-state measurement."""
    if points:
        ax.plot(
            [p[0] for p in points], [p[1] for p in points], linestyle="none",
            marker=style["marker"], markeredgecolor=style["color"], markerfacecolor="white",
        )  # fmt: skip


def _xlabel(mode: Mode) -> str:
    return "offered request rate (req/s)" if mode == "rate" else "concurrency (requests in flight)"


def _style_latency_y(ax: Axes, values: pd.Series, label: str) -> None:
    """Log y when the values span more than 30x (saturated points dwarf the rest)."""
    positive = values[values > 0].dropna()
    if len(positive) and positive.max() / positive.min() > 30:
        ax.set_yscale("log")
        label += ", log scale"
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel(label)


def _percentile_figure(
    frame: pd.DataFrame, styles: Styles, model: str, mode: Mode, metric: str, long: str
) -> Figure:
    fig = Figure(figsize=(13, 4.4), layout="constrained")
    axes = fig.subplots(1, len(PERCENTILES))
    pos, log = _x_positions(list(frame["load"]))
    series = _series(frame, styles)
    for ax, pct in zip(axes, PERCENTILES, strict=True):
        for label, rows, style in series:
            _draw(ax, rows, f"p{pct}_{metric}_ms", pos, label, style)
        ax.set_title(f"P{pct} {metric.upper()}")
        _style_latency_y(ax, frame[f"p{pct}_{metric}_ms"], f"{metric.upper()} (ms)")
        _style_x(ax, pos, log, _xlabel(mode))
    _legend(fig, axes[0], len(series), _several_sweeps(frame))
    fig.suptitle(f"{model}: {long} vs {_xlabel(mode).split(' (')[0]}")
    return fig


def _throughput_figure(frame: pd.DataFrame, styles: Styles, model: str, mode: Mode) -> Figure:
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    pos, log = _x_positions(list(frame["load"]))
    series = _series(frame, styles)
    for label, rows, style in series:
        _draw(left, rows, "output_throughput", pos, label, style)
        _draw(right, rows, "request_throughput", pos, label, style)
    left.set_title("achieved output token throughput")
    left.set_ylabel("output tokens/s")
    right.set_title("achieved request rate")
    right.set_ylabel("completed requests/s")
    finite = [x for x in pos if math.isfinite(x)]
    if mode == "rate" and finite:
        # sampled densely: a two-point segment is straight on the screen, and on a log x axis
        # that is not y = x (it read 3.3 at an offered 2 between 1 and 8)
        lo, hi = min(finite), max(finite)
        line = np.geomspace(lo, hi, 64) if log else np.linspace(lo, hi, 2)
        right.plot(
            line,
            line,
            color="#888888",
            linestyle="--",
            linewidth=1,
            label="y = x (offered)",
        )
    for ax in (left, right):
        ax.set_ylim(bottom=0)
        _style_x(ax, pos, log, _xlabel(mode))
    _legend(fig, right, len(series) + 1, _several_sweeps(frame))
    fig.suptitle(f"{model}: achieved vs offered load")
    return fig


def per_user_rate(rows: pd.DataFrame) -> pd.Series:
    """Output tokens/s one user sees while its answer streams: 1000 / P50 TPOT (ms)."""
    tpot = pd.to_numeric(rows["p50_tpot_ms"], errors="coerce")
    return 1000.0 / tpot.where(tpot > 0)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (higher is better on both), by x."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return sorted(front)


def _pareto_figure(frame: pd.DataFrame, styles: Styles, model: str) -> Figure:
    """Per-user speed against total throughput over every point of both modes: the trade-off
    a serving configuration offers (AIPerf's and vLLM's sweep charts). Each series' Pareto
    front is the solid line; its other points are drawn faint; hollow: not steady state."""
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.subplots()
    series = _series(frame, styles)
    for label, rows, style in series:
        rows = rows.assign(_user=per_user_rate(rows)).dropna(subset=["_user", "output_throughput"])
        pts = list(zip(rows["_user"], rows["output_throughput"], strict=True))
        front = pareto_front(pts)
        if front:
            ax.plot([p[0] for p in front], [p[1] for p in front], label=label, **style)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="none", alpha=0.35,
                color=style["color"], marker=style["marker"])  # fmt: skip
        _hollow(ax, [p for p, v in zip(pts, rows["validity"], strict=True) if not valid(v)], style)
    ax.set_xlabel("output tokens/s per user (1000 / P50 TPOT)")
    ax.set_ylabel("output tokens/s in total")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    _legend(fig, ax, len(series), _several_sweeps(frame))
    fig.suptitle(f"{model}: throughput per user vs in total (up and right is better)")
    return fig


def _legend(fig: Figure, ax: Axes, entries: int, sweeps: bool = False) -> None:
    """The legend, titled with what its labels hold (the sweep too where `sweeps`)."""
    title = "engine · quant · sweep" if sweeps else "engine · quant"
    if entries:
        ax.legend(fontsize=8, loc="best", title=title, title_fontsize=8)


def _empty_figure(model: str, mode: Mode, kind: str) -> Figure:
    fig = Figure(figsize=(6, 3))
    loop = "open-loop" if mode == "rate" else "closed-loop"
    fig.text(0.5, 0.5, f"{model}: no {loop} points\n({kind})", ha="center", va="center")
    return fig


def _save(fig: Figure, stem: Path) -> list[Path]:
    written = []
    for fmt in PLOT_FORMATS:
        path = stem.with_name(f"{stem.name}.{fmt}")
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        with matplotlib.rc_context({"svg.hashsalt": "enginebench"}):  # stable SVG ids
            fig.savefig(path, format=fmt, dpi=120, metadata=meta)
        written.append(path)
    return written


def _load(results: PathLike) -> pd.DataFrame:
    frame = mean_over_repeats(read_results(results))
    if frame.empty:
        return pd.DataFrame(columns=["model", "engine", "quant", "sweep", "mode", "load"])
    for key in ("model", "engine", "quant", "sweep"):
        frame[key] = frame[key].fillna("?").astype(str)
    return frame


def write_plots(
    results: PathLike,
    out_dir: PathLike,
    models: Sequence[str] | None = None,
    modes: Sequence[Mode] = ("rate",),
) -> list[Path]:
    """For each model (default: every model in the table) and mode, the figures named by
    `plot_paths`; a model without points of a mode gets placeholder figures, so the declared
    outputs always exist. The Pareto chart holds both modes: it is drawn with the first mode
    asked for only. Returns the written paths."""
    frame = _load(results)
    styles = _styles(frame)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for model in sorted(set(frame["model"])) if models is None else models:
        for mode in modes:
            rows = frame[(frame["model"] == model) & (frame["mode"] == mode)]
            stems = plot_paths(out_dir, model, mode)[:: len(PLOT_FORMATS)]
            for kind, stem in zip((p.kind for p in _plots(mode)), stems, strict=True):
                if kind == "pareto":
                    both = frame[frame["model"] == model]
                    if mode != modes[0]:
                        continue
                    if both.empty:
                        fig = _empty_figure(model, mode, kind)
                    else:
                        fig = _pareto_figure(both, styles, model)
                    written += _save(fig, stem.with_suffix(""))
                    continue
                if rows.empty:
                    fig = _empty_figure(model, mode, kind)
                elif kind == "throughput":
                    fig = _throughput_figure(rows, styles, model, mode)
                else:
                    long = "time to first token" if kind == "ttft" else "time per output token"
                    fig = _percentile_figure(rows, styles, model, mode, kind, long)
                written += _save(fig, stem.with_suffix(""))
    return written
