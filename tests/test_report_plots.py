"""Figures from per-engine tables: the declared files exist, are valid, and are stable."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from enginebench.report.plots import _x_positions, plot_paths, write_plots
from enginebench.report.synthetic import write_synthetic_results
from enginebench.report.tables import write_engine_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tables(root: Path, points: tuple[str, ...], models: tuple[str, ...] = ("tiny",)) -> list[Path]:
    csvs = []
    for (e, m, q), paths in write_synthetic_results(root, models=models, points=points).items():
        d = root / e / m / q
        write_engine_table(
            paths, d / "sweep" / "server.json", d / "t.csv", d / "t.md", d / "t.html"
        )
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
    throughput = (out / "tiny-throughput.svg").read_text()
    for text in ("output tokens/s", "completed requests/s", "y = x (offered)"):
        assert text in throughput, text
    conc = (out / "tiny-tpot-conc.svg").read_text()
    assert "concurrency (requests in flight)" in conc and "TPOT (ms)" in conc


def test_svg_output_is_reproducible(plotted: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out, _ = plotted
    csvs = sorted((out.parent / "results").glob("*/*/*/t.csv"))
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
    d = root / "llamacpp" / "tiny" / "q8_0"
    paths = [*sorted((d / "sweep").glob("rate-*.json")), d / "sweep" / "rate-9.json"]
    write_engine_table(paths, d / "sweep" / "server.json", d / "t.csv", d / "t.md", d / "t.html")
    written = write_plots(csvs, tmp_path / "p")
    assert len(written) == 6 and all(p.stat().st_size > 2000 for p in written)


def test_x_axis_positions() -> None:
    pos, log = _x_positions([1, 2, 4, 8, math.inf])
    assert log and pos[math.inf] == 16 and pos[8] == 8
    pos, log = _x_positions([0.5, 1.0, 1.5, math.inf])
    assert not log and pos[math.inf] == pytest.approx(2.0)
    pos, log = _x_positions([math.inf])
    assert pos == {math.inf: 1.0} and not log
    pos, log = _x_positions([4.0, math.inf])
    assert pos[math.inf] == 8.0
