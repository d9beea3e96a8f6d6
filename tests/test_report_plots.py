"""Figures from per-engine tables: the declared files exist, are valid, and are stable."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from enginebench.report.plots import _load_tables, _styles, _x_positions, plot_paths, write_plots
from enginebench.report.synthetic import write_synthetic_results
from enginebench.report.tables import write_engine_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tables(
    root: Path,
    points: tuple[str, ...],
    models: tuple[str, ...] = ("tiny",),
    sweep_name: str = "default",
) -> list[Path]:
    """Synthetic results of one named sweep, and their tables next to each server.json."""
    csvs = []
    written = write_synthetic_results(root, models=models, points=points, sweep_name=sweep_name)
    for (e, m, q), paths in written.items():
        d = root / e / m / q / sweep_name
        write_engine_table(paths, d / "server.json", d / "t.csv", d / "t.md", d / "t.html")
        csvs.append(d / "t.csv")
    return csvs


@pytest.fixture(scope="module")
def plotted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("plots")
    csvs = _tables(root / "results", ("rate-1", "rate-2", "rate-4", "rate-8", "rate-inf", "conc-2"))
    out = root / "plots"
    written = write_plots(csvs, out, modes=("rate", "concurrency"))
    return out, written


def test_declared_files_written(plotted: tuple[Path, list[Path]]) -> None:
    out, written = plotted
    expected = plot_paths(out, "tiny", "rate") + plot_paths(out, "tiny", "concurrency")
    assert written == expected
    assert [p.name for p in plot_paths(out, "tiny")] == [
        "tiny-ttft.png",
        "tiny-ttft.svg",
        "tiny-tpot.png",
        "tiny-tpot.svg",
        "tiny-throughput.png",
        "tiny-throughput.svg",
    ]
    assert plot_paths(out, "m", "concurrency")[0].name == "m-ttft-conc.png"


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


def test_svg_output_is_reproducible(plotted: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out, _ = plotted
    csvs = sorted((out.parent / "results").glob("*/*/*/*/t.csv"))
    assert len(csvs) == 2
    again = write_plots(csvs, tmp_path, models=["tiny"])
    for path in again:
        if path.suffix == ".svg":
            assert path.read_bytes() == (out / path.name).read_bytes(), path.name


def test_placeholders_for_a_model_or_mode_without_points(tmp_path: Path) -> None:
    csvs = _tables(tmp_path / "r", ("rate-1", "rate-2"))
    written = write_plots(csvs, tmp_path / "p", models=["tiny", "absent"], modes=("concurrency",))
    assert written == plot_paths(tmp_path / "p", "tiny", "concurrency") + plot_paths(
        tmp_path / "p", "absent", "concurrency"
    )
    assert "no closed-loop points" in (tmp_path / "p" / "absent-ttft-conc.svg").read_text()
    assert write_plots([], tmp_path / "none") == []  # no tables, no models: nothing


def test_missing_points_do_not_break_lines(tmp_path: Path) -> None:
    csvs = _tables(tmp_path / "r", ("rate-1", "rate-2"))
    root = tmp_path / "r"
    # add an absent point to one table: a blank row in the CSV
    d = root / "llamacpp" / "tiny" / "q8_0" / "default"
    paths = [*sorted((d / "points").glob("rate-*.json")), d / "points" / "rate-9.json"]
    frame = write_engine_table(paths, d / "server.json", d / "t.csv", d / "t.md", d / "t.html")
    assert list(frame["status"]) == ["ok", "ok", "missing"]
    written = write_plots(csvs, tmp_path / "p")
    assert written == plot_paths(tmp_path / "p", "tiny")
    assert all(p.stat().st_size > 2000 for p in written)


def test_two_sweeps_of_an_engine_are_two_lines(tmp_path: Path) -> None:
    csvs = _tables(tmp_path / "r", ("rate-1", "rate-2", "rate-inf"), sweep_name="default")
    csvs += _tables(tmp_path / "r", ("rate-1", "rate-4"), sweep_name="long")
    written = write_plots(csvs, tmp_path / "p")
    assert written == plot_paths(tmp_path / "p", "tiny")  # one model: one set of figures
    for kind in ("ttft", "throughput"):
        svg = (tmp_path / "p" / f"tiny-{kind}.svg").read_text()
        for engine in ("llamacpp", "vllm"):
            for sweep in ("default", "long"):
                assert f"{engine} · q8_0 · {sweep}" in svg, (kind, engine, sweep)
        assert "engine · quant · sweep" in svg  # the legend's title names what labels hold
    # same engine: same colour; its two sweeps: two dashes
    styles = _styles(_load_tables(csvs))
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
    import pandas as pd

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
