"""The tidy results table (CSV and Parquet), the metric registry's reach, and repeats."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from enginebench import metric_registry as registry
from enginebench.loadgen.results import format_table
from enginebench.metric_registry import Metric
from enginebench.points import points_from_config, prompt_rows
from enginebench.report.tables import write_comparison, write_engine_table
from enginebench.report.tidy import load_runs, mean_over_repeats, read_results, write_results
from tests.fixtures.synthetic import write_synthetic_results


def _runs(root: Path) -> list[tuple[list[Path], Path]]:
    written = write_synthetic_results(root, points=("rate-1", "rate-4", "rate-inf", "conc-2"))
    for paths in written.values():
        for i, path in enumerate(paths):  # a flag, as the load generator writes them
            path.write_text(json.dumps(json.loads(path.read_text()) | {"stream": i % 2 == 0}))
    return [(paths, paths[0].parent.parent / "server.json") for paths in written.values()]


def test_round_trips_through_csv_and_parquet_with_the_registrys_dtypes(tmp_path: Path) -> None:
    frame = load_runs(_runs(tmp_path / "r"))
    frame.loc[0, "engine_version"] = "0.10"  # text that a CSV reader would take for a number
    write_results(frame, tmp_path / "t.csv", tmp_path / "t.parquet")
    from_csv, from_parquet = read_results(tmp_path / "t.csv"), read_results(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(from_csv, from_parquet)
    pd.testing.assert_frame_equal(from_parquet, frame)
    # the registry's dtypes; the summary's other keys numbers, flags or text
    assert str(from_csv["failed"].dtype) == "Int64" and from_csv["engine_version"][0] == "0.10"
    assert from_csv["p99_ttft_ms"].dtype == "float64" and from_csv["mode"].dtype == object
    assert str(from_csv["stream"].dtype) == "boolean"
    # one row per engine x point, with the summary's own keys and provenance beside them
    assert len(from_csv) == 2 * 4 and from_csv.columns[0] == "engine"
    assert {"mean_ttft_ms", "request_rate", "server_argv", "started"} <= set(from_csv.columns)


def test_a_metric_added_to_the_registry_reaches_every_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = Metric("num_sent", "requests sent", kind="int", views=("cli", "engine", "comparison"))
    monkeypatch.setattr(registry, "METRICS", [*registry.METRICS, new])
    runs = _runs(tmp_path / "r")
    for paths, _ in runs:  # a summary key the views did not show before
        for path in paths:
            path.write_text(json.dumps(json.loads(path.read_text()) | {"num_sent": 100}))
    summary = json.loads(runs[0][0][0].read_text())
    assert "Requests sent:" in format_table(summary, ["ttft"], [99])
    d = tmp_path / "out"
    write_engine_table(runs[0][0], runs[0][1], d / "e.csv", d / "e.md", d / "e.html")
    assert "requests sent" in (d / "e.md").read_text()
    assert "requests sent" in pd.read_csv(d / "e.csv").columns
    write_results(load_runs(runs), d / "t.csv", d / "t.parquet")
    write_comparison(d / "t.parquet", d / "c.csv", d / "c.md", d / "c.html")
    assert "requests sent" in (d / "c.md").read_text()
    assert "<th>requests sent</th>" in (d / "c.html").read_text()  # the report's page


def test_repeats_run_interleaved_with_fresh_prompts() -> None:
    sweep = {"request_rates": [1, 2], "concurrency": [4], "num_prompts": 8, "repeats": 3}
    points = points_from_config(sweep)
    assert [p.name for p in points[:4]] == ["rate-1-r1", "rate-2-r1", "conc-4-r1", "rate-1-r2"]
    assert len(points) == 9 and len({p.name for p in points}) == 9
    first_rows, total = prompt_rows(points, warmups=4)
    assert first_rows[:2] == [4, 12] and total == 4 + 9 * 8  # no row is sent twice
    assert [p.name for p in points_from_config({**sweep, "repeats": 1})] == [
        "rate-1", "rate-2", "conc-4",
    ]  # fmt: skip


def test_mean_over_repeats_with_a_95_percent_interval(tmp_path: Path) -> None:
    root = tmp_path / "r"
    written = write_synthetic_results(
        root, engines=("llamacpp",), points=("rate-1-r1", "rate-1-r2", "rate-1-r3")
    )
    paths = written[("llamacpp", "tiny", "q8_0")]
    for path, ttft, validity in zip(
        paths, (10.0, 12.0, 17.0), ([], ["saturated"], []), strict=True
    ):
        s = json.loads(path.read_text())
        path.write_text(json.dumps(s | {"p99_ttft_ms": ttft, "validity": validity}))
    tidy = load_runs([(paths, None)])
    assert list(tidy["repeat"]) == [1, 2, 3] and set(tidy["load"]) == {1.0}
    row = mean_over_repeats(tidy).iloc[0]
    # mean 13, sample sd sqrt(13), t(0.975, 2) = 4.303
    assert row["p99_ttft_ms"] == pytest.approx(13.0)
    assert row["p99_ttft_ms_ci95"] == pytest.approx(4.303 * 13**0.5 / 3**0.5)
    assert row["repeats"] == 3 and row["point"] == "rate-1"
    assert row["validity"] == "saturated (1/3)"
