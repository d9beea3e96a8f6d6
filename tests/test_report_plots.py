"""Figures from the tidy results table: the declared files exist, are valid, and are stable."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer

from enginebench.points import parse_name
from enginebench.report.plots import (
    _load,
    _pareto_figure,
    _percentile_figure,
    _styles,
    _x_positions,
    pareto_front,
    per_user_rate,
    plot_paths,
    write_plots,
)
from enginebench.report.tables import write_engine_table
from enginebench.report.tidy import load_runs, write_results
from tests.fixtures.synthetic import (
    synthetic_server,
    synthetic_summary,
    write_synthetic_results,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

Run = tuple[list[Path], Path | None]


def _runs(
    root: Path,
    points: tuple[str, ...],
    models: tuple[str, ...] = ("tiny",),
    sweep_name: str = "default",
) -> list[Run]:
    """Synthetic results of one named sweep: (summary paths, server.json) per engine x model x
    quant."""
    written = write_synthetic_results(root, models=models, points=points, sweep_name=sweep_name)
    return [
        (paths, root / e / m / q / sweep_name / "server.json")
        for (e, m, q), paths in written.items()
    ]


def _results(runs: list[Run], path: Path) -> Path:
    """The tidy results table of `runs`, written as CSV and Parquet side by side; returns
    `path` (the .csv or the .parquet one)."""
    write_results(load_runs(runs), path.with_suffix(".csv"), path.with_suffix(".parquet"))
    return path


@pytest.fixture(scope="module")
def plotted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("plots")
    runs = _runs(root / "results", ("rate-1", "rate-2", "rate-4", "rate-8", "rate-inf", "conc-2"))
    results = _results(runs, root / "results.parquet")
    out = root / "plots"
    written = write_plots(results, out, modes=("rate", "concurrency"))
    return out, written


def test_declared_files_written(plotted: tuple[Path, list[Path]]) -> None:
    out, written = plotted
    # the Pareto chart holds both modes: written once, with the first mode
    conc = [p for p in plot_paths(out, "tiny", "concurrency") if "pareto" not in p.name]
    assert written == plot_paths(out, "tiny", "rate") + conc
    assert [p.name for p in plot_paths(out, "tiny")] == [
        "tiny-ttft.png",
        "tiny-ttft.svg",
        "tiny-tpot.png",
        "tiny-tpot.svg",
        "tiny-throughput.png",
        "tiny-throughput.svg",
        "tiny-pareto.png",
        "tiny-pareto.svg",
    ]
    assert plot_paths(out, "m", "concurrency")[0].name == "m-ttft-conc.png"
    assert plot_paths(out, "m", "concurrency")[-1].name == "m-pareto.svg"  # no -conc


def test_png_and_svg_are_valid(plotted: tuple[Path, list[Path]]) -> None:
    _, written = plotted
    for path in written:
        data = path.read_bytes()
        assert len(data) > 2000, path
        if path.suffix == ".png":
            assert data.startswith(PNG_MAGIC)
        else:
            root = ET.fromstring(data)
            assert root.tag.endswith("svg")


def test_figures_carry_labels_units_and_legend(plotted: tuple[Path, list[Path]]) -> None:
    out, _ = plotted
    ttft = (out / "tiny-ttft.svg").read_text()
    for text in ("P50 TTFT", "P99 TTFT", "offered request rate (req/s)", "TTFT (ms)", "inf"):
        assert text in ttft, text
    for series in ("llamacpp · q8_0", "vllm · q8_0"):
        assert series in ttft
    # one sweep in the figure: neither the labels nor the legend's title name it
    assert "· default" not in ttft and "engine · quant" in ttft and "· sweep" not in ttft
    throughput = (out / "tiny-throughput.svg").read_text()
    for text in ("output tokens/s", "completed requests/s", "y = x (offered)"):
        assert text in throughput, text
    conc = (out / "tiny-tpot-conc.svg").read_text()
    assert "concurrency (requests in flight)" in conc and "TPOT (ms)" in conc
    pareto = (out / "tiny-pareto.svg").read_text()
    for text in ("output tokens/s per user", "output tokens/s in total", "llamacpp · q8_0"):
        assert text in pareto, text


def test_svg_output_is_reproducible(plotted: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out, _ = plotted
    again = write_plots(out.parent / "results.parquet", tmp_path / "again", models=["tiny"])
    assert again == plot_paths(tmp_path / "again", "tiny")
    for path in again:
        if path.suffix == ".svg":
            assert path.read_bytes() == (out / path.name).read_bytes(), path.name
    # the CSV copy of the results draws the same figures (its floats carry 10 significant
    # digits, so a coordinate may differ in its last printed digit)
    from_csv = write_plots(out.parent / "results.csv", tmp_path / "csv", models=["tiny"])
    assert [p.name for p in from_csv] == [p.name for p in again]

    def shape(svg: Path) -> str:
        return re.sub(r"-?\d+\.\d+", "#", svg.read_text())

    for path in from_csv:
        if path.suffix == ".svg":
            assert shape(path) == shape(out / path.name), path.name


def test_placeholders_for_a_model_or_mode_without_points(tmp_path: Path) -> None:
    results = _results(_runs(tmp_path / "r", ("rate-1", "rate-2")), tmp_path / "r.parquet")
    written = write_plots(
        results, tmp_path / "p", models=["tiny", "absent"], modes=("concurrency",)
    )
    assert written == plot_paths(tmp_path / "p", "tiny", "concurrency") + plot_paths(
        tmp_path / "p", "absent", "concurrency"
    )
    assert "no closed-loop points" in (tmp_path / "p" / "absent-ttft-conc.svg").read_text()
    # the Pareto chart of a model with open-loop points only is still drawn, not a placeholder
    assert "no closed-loop" not in (tmp_path / "p" / "tiny-pareto.svg").read_text()
    assert "no closed-loop points" in (tmp_path / "p" / "absent-pareto.svg").read_text()
    empty = _results([], tmp_path / "empty.parquet")
    assert write_plots(empty, tmp_path / "none") == []  # no results, no models: nothing


def test_missing_points_do_not_break_lines(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "r", ("rate-1", "rate-2"))
    # add an absent point to one sweep: a blank row in its table and in the results
    d = tmp_path / "r" / "llamacpp" / "tiny" / "q8_0" / "default"
    paths = [*sorted((d / "points").glob("rate-*.json")), d / "points" / "rate-9.json"]
    frame = write_engine_table(paths, d / "server.json", d / "t.csv", d / "t.md", d / "t.html")
    assert list(frame["status"]) == ["ok", "ok", "missing"]
    runs = [(paths, d / "server.json") if s == d / "server.json" else (p, s) for p, s in runs]
    results = _results(runs, tmp_path / "r.parquet")
    assert list(_load(results)["status"]).count("missing") == 1
    written = write_plots(results, tmp_path / "p")
    assert written == plot_paths(tmp_path / "p", "tiny")
    assert all(p.stat().st_size > 2000 for p in written)


def test_two_sweeps_of_an_engine_are_two_lines(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "r", ("rate-1", "rate-2", "rate-inf"), sweep_name="default")
    runs += _runs(tmp_path / "r", ("rate-1", "rate-4"), sweep_name="long")
    results = _results(runs, tmp_path / "r.parquet")
    written = write_plots(results, tmp_path / "p")
    assert written == plot_paths(tmp_path / "p", "tiny")  # one model: one set of figures
    for kind in ("ttft", "throughput", "pareto"):
        svg = (tmp_path / "p" / f"tiny-{kind}.svg").read_text()
        for engine in ("llamacpp", "vllm"):
            for sweep in ("default", "long"):
                assert f"{engine} · q8_0 · {sweep}" in svg, (kind, engine, sweep)
        assert "engine · quant · sweep" in svg  # the legend's title names what labels hold
    # same engine: same colour; its two sweeps: two dashes
    styles = _styles(_load(results))
    sweeps = ("default", "long")
    assert set(styles) == {(e, "q8_0", s) for e in ("llamacpp", "vllm") for s in sweeps}
    short, long = styles[("llamacpp", "q8_0", "default")], styles[("llamacpp", "q8_0", "long")]
    assert short["color"] == long["color"] and short["linestyle"] != long["linestyle"]
    assert short["color"] != styles[("vllm", "q8_0", "default")]["color"]


def test_x_axis_positions() -> None:
    pos, log = _x_positions([1, 2, 4, 8, math.inf])
    assert log and pos[math.inf] == 16 and pos[8] == 8
    pos, log = _x_positions([0.5, 1.0, 1.5, math.inf])
    assert not log and pos[math.inf] == pytest.approx(2.0)
    pos, log = _x_positions([math.inf])
    assert pos == {math.inf: 1.0} and not log
    pos, log = _x_positions([4.0, math.inf])
    assert pos[math.inf] == 8.0


def test_invalid_points_hollow_and_the_offered_line_is_y_equals_x() -> None:
    """A flagged point (validity other than ok) is drawn hollow; the y = x line of the offered
    rate stays y = x on the log axis (a two-point segment read 3.3 at an offered 2)."""
    from enginebench.report.plots import _throughput_figure

    frame = pd.DataFrame(
        {
            "engine": "e", "quant": "q", "sweep": "s", "model": "m", "mode": "rate",
            "load": [1.0, 2.0, 5.0, 8.0],
            "output_throughput": [100.0, 200.0, 300.0, 310.0],
            "request_throughput": [1.0, 2.0, 3.0, 3.1],
            "validity": ["ok", "ok", "saturated", "saturated, too_short"],
        }
    )  # fmt: skip
    fig = _throughput_figure(frame, _styles(frame), "m", "rate")
    right = fig.axes[1]
    assert right.get_xscale() == "log"
    (offered,) = [ln for ln in right.get_lines() if ln.get_label() == "y = x (offered)"]
    xs, ys = offered.get_xdata(), offered.get_ydata()
    assert len(xs) > 2 and list(xs) == list(ys) and min(xs) == 1 and max(xs) == 8
    hollow = [ln for ln in right.get_lines() if ln.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [5.0, 8.0]
    # no repeats: no error bars
    assert not [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]


# -- Pareto chart ----------------------------------------------------------------------------


def test_pareto_front() -> None:
    points = [(1.0, 5.0), (2.0, 4.0), (3.0, 3.0), (2.0, 2.0), (0.5, 1.0), (3.0, 3.0)]
    assert pareto_front(points) == [(1.0, 5.0), (2.0, 4.0), (3.0, 3.0)]
    # a point equal on one axis and worse on the other is beaten
    assert pareto_front([(1.0, 5.0), (1.0, 6.0), (4.0, 3.0), (3.0, 3.0)]) == [
        (1.0, 6.0),
        (4.0, 3.0),
    ]
    assert pareto_front([(2.0, 2.0)]) == [(2.0, 2.0)]
    assert pareto_front([]) == []


def test_per_user_rate() -> None:
    rows = pd.DataFrame({"p50_tpot_ms": [10.0, 12.5, 0.0, math.nan, None]})
    rate = per_user_rate(rows).tolist()
    assert rate[:2] == [100.0, 80.0] and all(math.isnan(x) for x in rate[2:])


def test_pareto_figure_draws_each_series_front_over_both_modes() -> None:
    """Per-user speed (1000 / P50 TPOT) against total output throughput, every point of both
    modes; the solid line is the series' front; flagged points hollow."""
    frame = pd.DataFrame(
        {
            "engine": "e", "quant": "q", "sweep": "s", "model": "m",
            "mode": ["rate", "rate", "rate", "concurrency", "concurrency"],
            "load": [1.0, 2.0, 4.0, 1.0, 8.0],
            "p50_tpot_ms": [10.0, 12.5, 20.0, 10.0, 25.0],  # 100, 80, 50, 100, 40 tok/s/user
            "output_throughput": [100.0, 180.0, 150.0, 90.0, 300.0],
            "validity": ["ok", "ok", "saturated", "ok", "ok"],
        }
    )  # fmt: skip
    fig = _pareto_figure(frame, _styles(frame), "m")
    (ax,) = fig.axes
    (front,) = [ln for ln in ax.get_lines() if ln.get_label() == "e · q"]
    assert list(front.get_xdata()) == [40.0, 80.0, 100.0]
    assert list(front.get_ydata()) == [300.0, 180.0, 100.0]
    assert front.get_linestyle() == "-"
    # every point (both modes) drawn faint
    faint = [ln for ln in ax.get_lines() if ln.get_alpha() == 0.35]
    assert len(faint) == 1 and len(faint[0].get_xdata()) == 5
    hollow = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [50.0]
    assert ax.get_xlabel() == "output tokens/s per user (1000 / P50 TPOT)"


# -- repeats: means with 95% confidence intervals as error bars -------------------------------


def test_repeats_give_error_bars(tmp_path: Path) -> None:
    d = tmp_path / "r" / "eng" / "tiny" / "q4" / "default"
    (d / "points").mkdir(parents=True)
    ttft = {1: (100.0, 110.0, 130.0), 2: (200.0, 220.0, 240.0)}
    paths = []
    for rate, values in ttft.items():
        for k, value in enumerate(values, start=1):
            point = parse_name(f"rate-{rate}-r{k}")
            assert point is not None
            summary = synthetic_summary(point, engine="eng") | {"p50_ttft_ms": value}
            paths.append(d / "points" / f"{point.name}.json")
            paths[-1].write_text(json.dumps(summary))
    server = d / "server.json"
    server.write_text(json.dumps(synthetic_server("eng", "tiny", "q4") | {"sweep": "default"}))
    results = _results([(paths, server)], tmp_path / "r.parquet")
    frame = _load(results)
    assert list(frame["point"]) == ["rate-1", "rate-2"] and list(frame["repeats"]) == [3, 3]
    # by hand: t(2 df) = 4.303 times the sample sd over sqrt(3); sd is 15.275 and 20
    assert frame["p50_ttft_ms"].tolist() == pytest.approx([340 / 3, 220.0])
    expected = [4.303 * math.sqrt(700 / 3) / math.sqrt(3), 4.303 * 20.0 / math.sqrt(3)]
    assert frame["p50_ttft_ms_ci95"].tolist() == pytest.approx(expected)

    fig = _percentile_figure(frame, _styles(frame), "tiny", "rate", "ttft", "time to first token")
    p50 = fig.axes[0]
    (bars,) = [c for c in p50.containers if isinstance(c, ErrorbarContainer)]
    (segments,) = bars.lines[2]
    spans = [seg[1][1] - seg[0][1] for seg in segments.get_segments()]
    assert spans == pytest.approx([2 * e for e in expected])  # mean ± half-width
    written = write_plots(results, tmp_path / "p")
    assert written == plot_paths(tmp_path / "p", "tiny")
