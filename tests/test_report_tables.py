"""Per-engine tables, the tidy results table, the cross-engine comparison and the capacity
table from synthetic summaries."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from enginebench.points import SweepPoint, parse_name
from enginebench.report.tables import (
    capacity_frame,
    capacity_of,
    comparison_frame,
    write_capacity,
    write_comparison,
    write_engine_table,
)
from enginebench.report.tidy import load_runs, read_results, write_results
from tests.fixtures.synthetic import (
    SYNTHETIC_GPU,
    synthetic_provenance,
    synthetic_server,
    synthetic_summary,
    write_synthetic_results,
)

# the per-engine table after its offered-load column (the registry's "engine" view)
SEED_002 = [
    "repeats",
    "num-prompts",
    "failed requests",
    "short outputs",
    "benchmark duration (s)",
    "total input tokens",
    "total generated tokens",
    "request throughput (req/s)",
    "request goodput (req/s)",
    "input token throughput (tok/s)",
    "output token throughput (tok/s)",
    "output goodput (tok/s)",
    "P50 TTFT (ms)",
    "P90 TTFT (ms)",
    "P99 TTFT (ms)",
    "P50 TPOT (ms)",
    "P90 TPOT (ms)",
    "P99 TPOT (ms)",
    "validity",
    "achieved / offered",
    "shared prefix (tokens)",
    "cached prompt tokens (engine)",
    "unrequested cache hits",
    "engine P50 TPOT (ms)",
    "TPOT beyond engine TPOT (ms)",
    "TTFT beyond engine prompt time (ms)",
    "engine",
    "engine version",
    "engine commit",
    "model",
    "model sha",
    "quant",
    "sweep",
]
# the provenance columns at the end of every per-engine table
PROVENANCE = SEED_002[-7:]
# the rest of the provenance, after those, in the CSV only
DETAILS = [
    "model source",
    "model file sha256",
    "model path",
    "source commit",
    "workload",
    "seed",
    "server argv",
    "server env",
    "enginebench version",
    "enginebench commit",
    "enginebench uncommitted changes",
    "snakemake version",
    "host",
    "CPU",
    "usable CPU cores",
    "memory (bytes)",
    "cgroup memory limit (bytes)",
    "GPU",
    "GPU driver",
    "CUDA version",
    "started",
    "finished",
]

# a hand-written summary: every value distinct, so a wrong mapping shows
HAND = {
    "num_prompts": 50,
    "request_rate": 2.0,
    "duration": 25.5,
    "completed": 48,
    "failed": 2,
    "short_outputs": 1,
    "total_input_tokens": 6144,
    "total_output_tokens": 3071,
    "request_throughput": 1.8823529411764706,
    "input_throughput": 240.94,
    "output_throughput": 120.43,
    "median_ttft_ms": 31.0,
    "p50_ttft_ms": 31.0,
    "p90_ttft_ms": 52.5,
    "p99_ttft_ms": 99.25,
    "p50_tpot_ms": 11.5,
    "p90_tpot_ms": 13.75,
    "p99_tpot_ms": 17.125,
    "point": {"name": "rate-2", "mode": "rate", "load": 2.0, "repeat": 0},
    "provenance": {"engine": "own-engine", "model": "own-model", "engine_commit": "null"},
}


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _summary(label: str, **kw: Any) -> dict[str, Any]:
    point = parse_name(label)
    assert point is not None
    return synthetic_summary(point, **kw)


def _outs(d: Path) -> tuple[Path, Path, Path]:
    return d / "table.csv", d / "table.md", d / "table.html"


Run = tuple[list[Path], Path | None]


def _results(runs: list[Run], path: Path) -> Path:
    """The tidy results table of `runs` ((summary paths, server.json) per sweep), written as
    CSV and Parquet side by side; returns `path` (the .csv or the .parquet one)."""
    write_results(load_runs(runs), path.with_suffix(".csv"), path.with_suffix(".parquet"))
    return path


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """One named sweep in the workflow's layout, `<engine>/<model>/<quant>/<sweep>/` holding
    server.json and points/<point>.json; the tests write its tables next to server.json."""
    d = tmp_path / "results" / "eng" / "tiny" / "q4" / "default"
    for label in ("rate-10", "rate-inf", "rate-0.5", "rate-2"):
        _write(d / "points" / f"{label}.json", _summary(label, engine="eng"))
    _write(d / "server.json", synthetic_server("eng", "tiny", "q4") | {"sweep": "default"})
    return d


def test_columns_exact_and_points_sorted(sweep: Path) -> None:
    summaries = sorted((sweep / "points").glob("rate-*.json"))  # name order: 0.5, 10, 2, inf
    frame = write_engine_table(summaries, sweep / "server.json", *_outs(sweep))
    table = pd.read_csv(sweep / "table.csv")
    assert list(table.columns) == ["request-rate (req/s)", *SEED_002, *DETAILS]
    assert list(table["request-rate (req/s)"]) == [0.5, 2, 10, math.inf]
    assert list(frame["point"]) == ["rate-0.5", "rate-2", "rate-10", "rate-inf"]
    assert set(table["engine"]) == {"eng"} and set(table["quant"]) == {"q4"}
    assert set(table["sweep"]) == {"default"}
    assert table["model sha"][0] == "f" * 64  # full sha in the CSV
    assert table["engine commit"][0] == "0123456789abcdef0123456789abcdef01234567"


def test_values_map_from_summary_keys(tmp_path: Path) -> None:
    d = tmp_path / "x"
    path = _write(d / "rate-2.json", HAND)
    write_engine_table([path], None, *_outs(d))
    row = pd.read_csv(d / "table.csv").iloc[0].to_dict()
    expected = {
        "request-rate (req/s)": 2,
        "num-prompts": 50,
        "repeats": 1,
        "benchmark duration (s)": 25.5,
        "total input tokens": 6144,
        "total generated tokens": 3071,
        "request throughput (req/s)": pytest.approx(1.8823529411764706),
        "input token throughput (tok/s)": 240.94,
        "output token throughput (tok/s)": 120.43,
        "P50 TTFT (ms)": 31.0,
        "P90 TTFT (ms)": 52.5,
        "P99 TTFT (ms)": 99.25,
        "P50 TPOT (ms)": 11.5,
        "P90 TPOT (ms)": 13.75,
        "P99 TPOT (ms)": 17.125,
        "failed requests": 2,
        "short outputs": 1,
        "engine": "own-engine",  # the summary's own provenance
        "model": "own-model",
    }
    assert {k: row[k] for k in expected} == expected
    # unknown provenance stays blank; a "null" is not a commit
    unknown = ("engine version", "engine commit", "model sha", "quant", "sweep")
    assert all(pd.isna(row[k]) for k in unknown)
    ints = pd.read_csv(d / "table.csv").dtypes
    assert ints["num-prompts"].kind == "i" and ints["total generated tokens"].kind == "i"


def test_engine_account_beside_ours_and_unrequested_cache_hits_marked(sweep: Path) -> None:
    points = sweep / "points"
    account = {"engine_cached_prompt_tokens": 0, "requests_with_unrequested_cache_hits": 0,
               "median_engine_decode_ms_per_token": 11.0, "tpot_beyond_engine_ms": 0.4,
               "ttft_beyond_engine_ms": 1.5, "shared_prefix_len": 0}  # fmt: skip
    _write(points / "rate-1.json", _summary("rate-1") | account)
    hits = account | {"engine_cached_prompt_tokens": 640, "requests_with_unrequested_cache_hits": 5}
    _write(points / "rate-2.json", _summary("rate-2") | hits)
    shared = account | {"engine_cached_prompt_tokens": 3300, "shared_prefix_len": 33}
    _write(points / "rate-8.json", _summary("rate-8") | shared)
    # rate-10: an engine that reports nothing: blank, not 0
    paths = [points / f"{p}.json" for p in ("rate-1", "rate-2", "rate-8", "rate-10")]
    write_engine_table(paths, sweep / "server.json", *_outs(sweep))
    table = pd.read_csv(sweep / "table.csv")
    assert list(table["unrequested cache hits"][:3]) == [0, 5, 0]
    assert list(table["shared prefix (tokens)"][:3]) == [0, 0, 33]
    assert list(table["cached prompt tokens (engine)"][:3]) == [0, 640, 3300]
    assert table["engine P50 TPOT (ms)"][0] == 11.0
    assert table.iloc[3][["cached prompt tokens (engine)", "unrequested cache hits"]].isna().all()
    rows = _Table.parse((sweep / "table.html").read_text()).row_classes
    assert rows == ["", "warn", "", ""]  # only the hits nobody asked for are marked
    results = _results([(paths, sweep / "server.json")], sweep.parent / "results.parquet")
    write_comparison(results, *_outs(sweep.parent / "cmp"))
    cmp = pd.read_csv(sweep.parent / "cmp" / "table.csv")
    assert list(cmp["unrequested cache hits"][:3]) == [0, 5, 0]


def test_summary_read_as_written_no_fallbacks(tmp_path: Path) -> None:
    """A summary is read as the load generator writes it: a key it lacks stays blank (the
    reader derives nothing), and one without its `point` or `provenance` is a one-line error
    naming the migration."""
    data = {k: v for k, v in HAND.items() if k not in ("input_throughput", "num_prompts")}
    path = _write(tmp_path / "rate-2.json", data)
    write_engine_table([path], None, *_outs(tmp_path))
    row = pd.read_csv(tmp_path / "table.csv").iloc[0]
    assert pd.isna(row["input token throughput (tok/s)"]) and pd.isna(row["num-prompts"])
    for key in ("point", "provenance"):
        _write(path, {k: v for k, v in HAND.items() if k != key})
        with pytest.raises(ValueError, match=rf"without its `{key}`.*migrate_summaries"):
            write_engine_table([path], None, *_outs(tmp_path))


def test_provenance_from_the_summary_and_server_json_for_a_missing_point(sweep: Path) -> None:
    """A measured point's provenance is its summary's own, whatever server.json says; a point
    not measured takes the run's server.json."""
    server = synthetic_server("eng", "tiny", "q4") | {
        "engine_version": "b4567",
        "model_sha": None,
        "sweep": "nightly",
    }
    _write(sweep / "server.json", server)
    measured = sweep / "points" / "rate-2.json"
    missing = sweep / "points" / "rate-3.json"
    write_engine_table([measured, missing], sweep / "server.json", *_outs(sweep))
    rows = pd.read_csv(sweep / "table.csv", dtype=str)
    assert list(rows["engine version"]) == ["1.2.3", "b4567"]
    assert list(rows["sweep"]) == ["default", "nightly"]
    assert rows["model sha"][0] == "f" * 64 and pd.isna(rows["model sha"][1])
    # the path says nothing: without server.json a missing point's provenance is blank
    write_engine_table([measured, missing], None, *_outs(sweep))
    rows = pd.read_csv(sweep / "table.csv", dtype=str)
    assert list(rows["engine"].fillna("")) == ["eng", ""]
    assert (sweep / "table.md").read_text().startswith("# eng · tiny · q4 · default\n")


def test_missing_and_failed_points(sweep: Path) -> None:
    points = sweep / "points"
    _write(points / "rate-4.json", _summary("rate-4", failed=100))  # nothing completed
    _write(points / "rate-1.json", _summary("rate-1", failed=3, short_outputs=2))
    paths = [points / f"{p}.json" for p in ("rate-1", "rate-2", "rate-4", "rate-8")]  # 8: absent
    frame = write_engine_table(paths, sweep / "server.json", *_outs(sweep))
    assert list(frame["status"]) == ["ok", "ok", "none-completed", "missing"]
    table = pd.read_csv(sweep / "table.csv")
    assert list(table["request-rate (req/s)"]) == [1, 2, 4, 8]
    assert list(table["failed requests"][:3]) == [3, 0, 100]
    assert list(table["short outputs"][:2]) == [2, 0]
    assert table.iloc[2][["P50 TTFT (ms)", "P99 TPOT (ms)"]].isna().all()  # zero requests
    # repeats counts the measured runs of a point: none for no request completed, or absent
    assert list(table["repeats"]) == [1, 1, 0, 0]
    blank = table.iloc[3].drop(["request-rate (req/s)", "repeats", *PROVENANCE, *DETAILS])
    assert blank.isna().all()
    assert table.iloc[3]["engine"] == "eng" and table.iloc[3]["sweep"] == "default"
    md = (sweep / "table.md").read_text()
    assert md.count("—") >= 15 and "not measured" in md
    html = (sweep / "table.html").read_text()
    rows = _Table.parse(html).row_classes
    assert rows == ["warn", "", "missing warn", "missing"]


def test_bad_point_name_of_a_missing_summary(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a point's file name"):
        write_engine_table([tmp_path / "weird.json"], None, *_outs(tmp_path))


def test_point_from_summary_when_name_says_nothing(tmp_path: Path) -> None:
    closed = _write(tmp_path / "a.json", _summary("conc-8"))
    opened = _write(tmp_path / "b.json", _summary("rate-3"))
    frame = write_engine_table([closed, opened], None, *_outs(tmp_path))
    assert list(frame["point"]) == ["rate-3", "conc-8"]


def test_concurrency_and_mixed_headers(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    for n in (16, 4, 1):
        _write(closed / f"conc-{n}.json", _summary(f"conc-{n}"))
    write_engine_table(sorted(closed.glob("*.json")), None, *_outs(closed))
    table = pd.read_csv(closed / "table.csv")
    assert table.columns[0] == "concurrency" and list(table["concurrency"]) == [1, 4, 16]

    mixed = tmp_path / "mixed"
    for label in ("conc-4", "rate-inf", "rate-1", "conc-1"):
        _write(mixed / f"{label}.json", _summary(label))
    paths = sorted(mixed.glob("*.json"))
    frame = write_engine_table(paths, None, *_outs(mixed))
    table = pd.read_csv(mixed / "table.csv")
    assert table.columns[0] == "request-rate (req/s) / concurrency"
    assert list(table.iloc[:, 0]) == ["1", "inf", "conc-1", "conc-4"]
    for back in (frame, read_results(_results([(paths, None)], mixed / "results.csv"))):
        assert list(back["mode"]) == ["rate", "rate", "concurrency", "concurrency"]
        assert list(back["load"]) == [1, math.inf, 1, 4]


def test_results_read_back_the_same_from_csv_and_parquet(sweep: Path) -> None:
    paths = sorted((sweep / "points").glob("rate-*.json"))
    frame = write_engine_table(paths, sweep / "server.json", *_outs(sweep))
    tidy = load_runs([(paths, sweep / "server.json")])
    write_results(tidy, sweep / "results.csv", sweep / "results.parquet")
    back = read_results(sweep / "results.csv")
    pd.testing.assert_frame_equal(back, read_results(sweep / "results.parquet"))
    pd.testing.assert_frame_equal(back, tidy)
    assert list(back["point"]) == list(frame["point"])
    assert list(back["repeat"]) == [0] * 4 and list(back["status"]) == ["ok"] * 4
    for key in ("request_throughput", "p99_ttft_ms", "p50_tpot_ms", "output_throughput"):
        assert back[key].tolist() == pytest.approx(frame[key].tolist(), rel=1e-9)
    assert back["engine_version"].tolist() == ["1.2.3"] * 4
    assert back["sweep"].tolist() == ["default"] * 4
    assert back["workload"].tolist() == ["random-128-64"] * 4  # provenance details come back
    assert back["memory_bytes"].tolist() == [str(64 * 2**30)] * 4
    # the summary's keys the registry does not know reach the table too, typed
    assert back["backend"].tolist() == ["openai-chat"] * 4
    assert back["burstiness"].dtype == "float64" and back["burstiness"].tolist() == [1.0] * 4
    # the engine table's CSV holds the same numbers under its display headers
    table = pd.read_csv(sweep / "table.csv")
    assert table["P99 TTFT (ms)"].tolist() == pytest.approx(back["p99_ttft_ms"].tolist())
    # a column from a newer writer is kept as it is; the rest reads the same
    wider = pd.read_csv(sweep / "results.csv", dtype=str, keep_default_na=False)
    wider["from_a_newer_writer"] = "x"
    wider.to_csv(sweep / "wider.csv", index=False)
    again = read_results(sweep / "wider.csv")
    assert again["from_a_newer_writer"].tolist() == ["x"] * 4
    pd.testing.assert_frame_equal(again.drop(columns="from_a_newer_writer"), back)


def test_engine_version_stays_text(tmp_path: Path) -> None:
    """`0.10` must not come back as the number 0.1."""
    d = tmp_path / "r" / "e" / "m" / "q" / "default"
    own = synthetic_provenance("e", "m", "q") | {"engine_version": "0.10"}
    _write(d / "points" / "rate-1.json", _summary("rate-1", provenance=own))
    _write(d / "server.json", synthetic_server("e", "m", "q") | {"engine_version": "0.10"})
    runs: list[Run] = [([d / "points" / "rate-1.json"], d / "server.json")]
    write_engine_table(*runs[0], *_outs(d))
    assert pd.read_csv(d / "table.csv", dtype=str)["engine version"][0] == "0.10"
    _results(runs, d / "results.csv")
    for path in (d / "results.csv", d / "results.parquet"):
        assert read_results(path)["engine_version"][0] == "0.10", path.name


def test_markdown_formatting(sweep: Path) -> None:
    write_engine_table([sweep / "points" / "rate-inf.json"], sweep / "server.json", *_outs(sweep))
    md = (sweep / "table.md").read_text().splitlines()
    assert md[0] == "# eng · tiny · q4 · default"
    header, rule, row = md[2], md[3], md[4]
    assert header.startswith("|") and "P99 TPOT (ms)" in header
    assert set(rule) <= {"|", "-", ":"}
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 1 + len(SEED_002) and cells[-1] == "default"  # the sweep, last
    cell = dict(zip(["request-rate (req/s)", *SEED_002], cells, strict=True))
    assert cell["request-rate (req/s)"] == "inf"
    assert cell["repeats"] == "1" and cell["num-prompts"] == "100"
    # P50 TTFT, thousands separator and 2 decimals, kept as is
    assert cell["P50 TTFT (ms)"] == "2,000.00"
    assert cell["request throughput (req/s)"] == "7.840"  # req/s with 3 decimals
    assert cell["engine commit"] == "0123456789ab" and cell["model sha"] == "f" * 12  # shortened
    assert not [line for line in md if line.startswith("|") and "±" in line]  # no repeats


class _Table(HTMLParser):
    """Collects the structure of our HTML documents: per table (`tables`, in page order) its
    caption, headers, rows and row classes; `headers`, `rows`, `row_classes` are the last
    table's (a page's own table; the comparison page shows the capacity table before it)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.tables: list[dict[str, Any]] = []
        self.titles: list[str] = []
        self.style = ""
        self._cell: list[str] | None = None
        self._where = ""

    @classmethod
    def parse(cls, text: str) -> _Table:
        parser = cls()
        parser.feed(text)
        return parser

    @property
    def captions(self) -> list[str]:
        return [t["caption"] for t in self.tables]

    @property
    def headers(self) -> list[str]:
        return list(self.tables[-1]["headers"])

    @property
    def rows(self) -> list[list[str]]:
        return list(self.tables[-1]["rows"])

    @property
    def row_classes(self) -> list[str]:
        return list(self.tables[-1]["row_classes"])

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"caption": "", "headers": [], "rows": [], "row_classes": []})
        if tag in ("thead", "tbody", "style", "caption"):
            self._where = tag
        if tag == "tr" and self._where == "tbody":
            self.tables[-1]["rows"].append([])
            self.tables[-1]["row_classes"].append(a.get("class") or "")
        if tag in ("td", "th"):
            self._cell = []
            if a.get("title"):
                self.titles.append(a["title"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            table = self.tables[-1]
            (table["headers"] if tag == "th" else table["rows"][-1]).append(text)
            self._cell = None
        if tag in ("style", "caption"):
            self._where = ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._where == "style":
            self.style += data
        elif self._where == "caption":
            self.tables[-1]["caption"] += data


def test_html_is_a_clean_self_contained_table(sweep: Path) -> None:
    summaries = sorted((sweep / "points").glob("rate-*.json"))
    write_engine_table(summaries, sweep / "server.json", *_outs(sweep))
    text = (sweep / "table.html").read_text()
    assert text.startswith("<!DOCTYPE html>")
    for external in ("<script", "<link", "src=", "http://", "https://"):
        assert external not in text
    table = _Table.parse(text)
    assert table.headers == ["request-rate (req/s)", *SEED_002]
    assert len(table.rows) == 4 and all(len(r) == len(table.headers) for r in table.rows)
    assert [r[0] for r in table.rows] == ["0.5", "2", "10", "inf"]
    assert [r[-1] for r in table.rows] == ["default"] * 4
    assert "font-variant-numeric" in table.style and "table.eb" in table.style
    # the stylesheet goes in as written: a browser does not decode entities inside <style>
    assert '"Segoe UI"' in table.style and "&#34;" not in table.style
    assert "f" * 64 in table.titles  # the full sha in a tooltip
    assert table.tags.count("table") == 1 and table.captions == ["eng · tiny · q4 · default"]


def test_html_escapes_values(tmp_path: Path) -> None:
    d = tmp_path / "r" / "e" / "m" / "q" / "default"
    own = synthetic_provenance("e", "<b>x</b>&", "q")
    _write(d / "points" / "rate-1.json", _summary("rate-1", provenance=own))
    _write(d / "server.json", synthetic_server("e", "m", "q") | {"model": "<b>x</b>&"})
    write_engine_table([d / "points" / "rate-1.json"], d / "server.json", *_outs(d))
    text = (d / "table.html").read_text()
    assert "<b>x" not in text and "&lt;b&gt;x&lt;/b&gt;&amp;" in text


def test_server_json_in_the_summary_list_is_skipped(sweep: Path) -> None:
    paths = [*sorted((sweep / "points").glob("*.json")), sweep / "server.json"]
    frame = write_engine_table(paths, sweep / "server.json", *_outs(sweep))
    assert len(frame) == 4


# -- the rest of the provenance, CSV only -----------------------------------------------------

# the point's own times, unlike the whole sweep's in server.json
POINT_TIMES = {
    "rate-1": ("2025-03-02T10:00:05+00:00", "2025-03-02T10:01:40+00:00"),
    "rate-inf": ("2025-03-02T10:02:00+00:00", "2025-03-02T10:02:31+00:00"),
}


def _stamped(d: Path, server: dict[str, Any], **prov: Any) -> list[Path]:
    """rate-1 and rate-inf summaries carrying the sweep's `provenance` block (its values
    changed by `prov`), each with its own start and end; `server` as server.json."""
    paths = []
    for label, (started, finished) in POINT_TIMES.items():
        block = synthetic_provenance("eng", "tiny", "q4", "default", gpu=SYNTHETIC_GPU)
        block |= {"started": started, "finished": finished, **prov}
        paths.append(_write(d / "points" / f"{label}.json", _summary(label, provenance=block)))
    _write(d / "server.json", server | {"sweep": "default"})
    return paths


def _csv_rows(d: Path) -> list[dict[str, Any]]:
    table = pd.read_csv(d / "table.csv", dtype=str, keep_default_na=False)
    return [dict(row) for _, row in table.iterrows()]


def test_csv_carries_the_summarys_provenance(tmp_path: Path) -> None:
    d = tmp_path / "results" / "eng" / "tiny" / "q4" / "default"
    # server.json disagrees everywhere: the summary's own provenance wins
    server = synthetic_server("eng", "tiny", "q4") | {
        "engine_version": "9.9.9",
        "workload": "server-workload",
        "host": {"hostname": "server-host", "cpu": {"model": "Server CPU"}, "gpu": None},
        "env": {"OMP_NUM_THREADS": "99"},
    }
    paths = _stamped(d, server, env={"OMP_NUM_THREADS": "4", "CUDA_VISIBLE_DEVICES": "0,1"})
    write_engine_table(paths, d / "server.json", *_outs(d))
    rows = _csv_rows(d)
    assert len(rows) == 2
    expected = {
        "engine version": "1.2.3",
        "model source": "hf:example/tiny@main",
        "model file sha256": "e" * 64,  # in full
        "model path": "/models/tiny",
        "workload": "random-128-64",
        "seed": "0",
        "server argv": '["eng-server","--model","/models/tiny","--port","8000"]',
        "server env": '{"CUDA_VISIBLE_DEVICES":"0,1","OMP_NUM_THREADS":"4"}',
        "enginebench version": "0.1.0",
        "enginebench commit": "a" * 40,
        "enginebench uncommitted changes": "false",
        "snakemake version": "9.0.0",
        "host": "bench-host",
        "CPU": "Example CPU",
        "usable CPU cores": "16",
        "memory (bytes)": str(64 * 2**30),
        "cgroup memory limit (bytes)": "",
        "GPU": "NVIDIA H100 80GB HBM3",
        "GPU driver": "550.54.15",
        "CUDA version": "12.4",
    }
    for row in rows:
        assert {k: row[k] for k in expected} == expected
    assert json.loads(rows[0]["server argv"])[0] == "eng-server"  # one JSON value per cell

    # the Markdown and HTML keep the compact columns: none of these headers, none of the values
    md = (d / "table.md").read_text()
    html = (d / "table.html").read_text()
    assert _Table.parse(html).headers == ["request-rate (req/s)", *SEED_002]
    assert md.splitlines()[2].count("|") == len(SEED_002) + 2
    for text in ("model file sha256", "server argv", "GPU driver", "eng-server", "H100", "12.4"):
        assert text not in md and text not in html, text


def test_gpu_of_several_devices_and_none(tmp_path: Path) -> None:
    d = tmp_path / "r" / "eng" / "tiny" / "q4" / "default"
    two = {**SYNTHETIC_GPU, "count": 2, "devices": SYNTHETIC_GPU["devices"] * 2}
    host = synthetic_provenance("eng", "tiny", "q4")["host"] | {"gpu": two}
    paths = _stamped(d, synthetic_server("eng", "tiny", "q4"), host=host)
    write_engine_table(paths, d / "server.json", *_outs(d))
    assert _csv_rows(d)[0]["GPU"] == "2 x NVIDIA H100 80GB HBM3"
    # no GPU: blank name, driver and CUDA (not "None", not server.json's)
    host = host | {"gpu": None}
    paths = _stamped(d, synthetic_server("eng", "tiny", "q4"), host=host)
    write_engine_table(paths, d / "server.json", *_outs(d))
    row = _csv_rows(d)[0]
    assert (row["GPU"], row["GPU driver"], row["CUDA version"]) == ("", "", "")
    assert row["CPU"] == "Example CPU"


def test_points_have_their_own_start_and_end(tmp_path: Path) -> None:
    d = tmp_path / "r" / "eng" / "tiny" / "q4" / "default"
    paths = _stamped(d, synthetic_server("eng", "tiny", "q4"))
    frame = write_engine_table(paths, d / "server.json", *_outs(d))
    assert list(frame["point"]) == ["rate-1", "rate-inf"]
    rows = _csv_rows(d)
    assert [(r["started"], r["finished"]) for r in rows] == list(POINT_TIMES.values())
    back = read_results(_results([(paths, d / "server.json")], d / "results.parquet"))
    assert back["started"].tolist() == [t for t, _ in POINT_TIMES.values()]
    assert back["finished"].tolist() == [t for _, t in POINT_TIMES.values()]


def test_a_missing_point_reads_the_run_from_server_json(tmp_path: Path) -> None:
    """One record per row: a measured point's summary, or (a point not measured) the run's
    server.json, whose start and end are the whole sweep's, so the row leaves them blank."""
    d = tmp_path / "r" / "eng" / "tiny" / "q4" / "default"
    server = synthetic_provenance("eng", "tiny", "q4", gpu=SYNTHETIC_GPU) | {
        "engine_version": "7.0",
        "workload": "sharegpt",
        "started": "2025-05-05T05:00:00+00:00",
        "finished": "2025-05-05T06:00:00+00:00",
        "packages": {"vllm": "0.9.0"},
    }
    _write(d / "server.json", server)
    write_engine_table([d / "points" / "rate-1.json"], d / "server.json", *_outs(d))
    row = _csv_rows(d)[0]
    assert row["engine version"] == "7.0" and row["workload"] == "sharegpt"
    assert row["GPU"] == "NVIDIA H100 80GB HBM3" and row["CUDA version"] == "12.4"
    assert row["host"] == "bench-host" and row["model file sha256"] == "e" * 64
    assert (row["started"], row["finished"]) == ("", "")
    # a measured point: its summary's block only, nothing taken from server.json
    block = synthetic_provenance("eng", "tiny", "q4") | {"started": None}
    block.pop("finished")
    _write(d / "points" / "rate-1.json", _summary("rate-1", engine="eng", provenance=block))
    write_engine_table([d / "points" / "rate-1.json"], d / "server.json", *_outs(d))
    row = _csv_rows(d)[0]
    assert (row["started"], row["finished"]) == ("", "")
    assert row["engine version"] == "1.2.3" and row["GPU"] == ""


def test_missing_point_has_no_times_but_the_runs_provenance(tmp_path: Path) -> None:
    """A point without a summary did not run: no start or end of its own, and not the whole
    sweep's either; what describes the run (engine version, host, ...) still comes from
    server.json."""
    d = tmp_path / "r" / "eng" / "tiny" / "q4" / "default"
    server = synthetic_provenance("eng", "tiny", "q4", gpu=SYNTHETIC_GPU) | {
        "engine_version": "7.0",
        "source_commit": "b" * 40,
        "started": "2025-05-05T05:00:00+00:00",
        "finished": "2025-05-05T06:00:00+00:00",
    }
    paths = _stamped(d, server)
    paths.append(d / "points" / "rate-4.json")  # never written
    frame = write_engine_table(paths, d / "server.json", *_outs(d))
    assert list(frame["status"]) == ["ok", "missing", "ok"]  # rate-1, rate-4, rate-inf
    rows = _csv_rows(d)
    missing = rows[1]
    assert (missing["started"], missing["finished"]) == ("", "")
    assert missing["engine version"] == "7.0" and missing["source commit"] == "b" * 40
    assert missing["host"] == "bench-host" and missing["GPU"] == "NVIDIA H100 80GB HBM3"
    assert [(r["started"], r["finished"]) for r in (rows[0], rows[2])] == list(POINT_TIMES.values())


def test_source_commit_reaches_the_csv(tmp_path: Path) -> None:
    d = tmp_path / "r" / "eng" / "tiny" / "q4" / "default"
    # the summary's provenance; server.json's for a point not measured
    server = synthetic_server("eng", "tiny", "q4") | {"source_commit": "b" * 40}
    paths = _stamped(d, server, source_commit="c" * 40)
    old = d / "points" / "rate-2.json"
    write_engine_table([*paths, old], d / "server.json", *_outs(d))
    rows = _csv_rows(d)
    assert [r["source commit"] for r in rows] == ["c" * 40, "b" * 40, "c" * 40]  # full sha
    header = list(rows[0])
    assert header.index("source commit") == header.index("model path") + 1
    back = read_results(_results([([*paths, old], d / "server.json")], d / "results.csv"))
    assert back["source_commit"].tolist() == ["c" * 40, "b" * 40, "c" * 40]
    # only in the CSV
    for out in _outs(d)[1:]:
        assert "c" * 12 not in out.read_text() and "source commit" not in out.read_text()
    # an engine that runs no checkout: blank
    paths = _stamped(d, server | {"source_commit": None}, source_commit=None)
    write_engine_table(paths, d / "server.json", *_outs(d))
    assert [r["source commit"] for r in _csv_rows(d)] == ["", ""]


def test_table_adds_nothing_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_report_env")
    monkeypatch.setenv("OMP_NUM_THREADS", "omp-from-the-report-env")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "cuda-from-the-report-env")
    d = tmp_path / "r" / "eng" / "tiny" / "q4" / "default"
    server = synthetic_server("eng", "tiny", "q4") | {"env": None}
    # a record that still held a secret (it should not) loses it here too
    leaky = {"OMP_NUM_THREADS": "2", "HF_TOKEN": "hf_leaked_upstream"}
    argv = ["eng-server", "--api-key", "sk-leaked-upstream", "--port", "8000"]
    paths = _stamped(d, server, env=leaky, server_argv=argv)
    block = synthetic_provenance("eng", "tiny", "q4") | {"env": None}  # no env anywhere
    paths.append(_write(d / "points" / "rate-2.json", _summary("rate-2", provenance=block)))
    write_engine_table(paths, d / "server.json", *_outs(d))
    rows = _csv_rows(d)
    assert [r["server env"] for r in rows] == [
        '{"OMP_NUM_THREADS":"2"}',
        "",
        '{"OMP_NUM_THREADS":"2"}',
    ]
    assert json.loads(rows[0]["server argv"])[2] == "<redacted>"
    for out in _outs(d):
        text = out.read_text()
        for secret in ("from-the-report-env", "hf_from", "leaked", "HF_TOKEN"):
            assert secret not in text, (out.name, secret)


# -- comparison -------------------------------------------------------------------------------

COMPARISON = [
    "model",
    "request-rate (req/s)",
    "concurrency",
    "engine",
    "quant",
    "sweep",
    "engine version",
    "repeats",
    "failed requests",
    "short outputs",
    "request throughput (req/s)",
    "output token throughput (tok/s)",
    "P50 TTFT (ms)",
    "P99 TTFT (ms)",
    "P50 TPOT (ms)",
    "P99 TPOT (ms)",
    "validity",
    "unrequested cache hits",
    "engine P50 TPOT (ms)",
]

CAPACITY = [
    "model",
    "engine",
    "quant",
    "sweep",
    "capacity (req/s)",
    "output token throughput there (tok/s)",
    "P99 TTFT there (ms)",
    "P99 TPOT there (ms)",
    "first saturated rate (req/s)",
    "SLO",
    "SLO capacity (req/s)",
    "request goodput there (req/s)",
    "output goodput there (tok/s)",
    "rates measured",
]


def _runs(root: Path, sweep_name: str = "default", **kw: Any) -> list[Run]:
    """Synthetic results of one named sweep: (summary paths, server.json) per engine x model x
    quant."""
    written = write_synthetic_results(root, sweep_name=sweep_name, **kw)
    return [
        (paths, root / e / m / q / sweep_name / "server.json")
        for (e, m, q), paths in written.items()
    ]


def test_comparison_lines_up_loads_across_engines(tmp_path: Path) -> None:
    runs = _runs(
        tmp_path,
        engines=("vllm", "llamacpp"),
        models=("m2", "m1"),
        quants=("q8", "q4"),
        points=("rate-inf", "rate-1", "conc-2", "rate-4"),
    )
    results = _results(list(reversed(runs)), tmp_path / "results.parquet")
    out = tmp_path / "cmp"
    frame = write_comparison(results, out / "c.csv", out / "c.md", out / "c.html")
    table = pd.read_csv(out / "c.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == COMPARISON
    assert len(table) == 2 * 2 * 2 * 4
    assert set(table["sweep"]) == {"default"} and set(table["repeats"]) == {"1"}
    columns = ["model", "request-rate (req/s)", "concurrency", "engine", "quant"]
    keys = list(table[columns].itertuples(index=False, name=None))
    first = [
        ("m1", "1", "", "llamacpp", "q4"),
        ("m1", "1", "", "llamacpp", "q8"),
        ("m1", "1", "", "vllm", "q4"),
        ("m1", "1", "", "vllm", "q8"),
        ("m1", "4", "", "llamacpp", "q4"),
    ]
    assert keys[:5] == first
    loads = [(m, r, c) for m, r, c, _, _ in keys]
    assert loads[8:16] == [("m1", "inf", "")] * 4 + [("m1", "", "2")] * 4
    assert keys[16][0] == "m2"
    assert list(frame["point"][:4]) == ["rate-1"] * 4
    html = _Table.parse((out / "c.html").read_text())
    groups = [c for c in html.row_classes if "group-start" in c]
    assert len(groups) == 2 * 4 - 1  # every model x load group but the first
    md = (out / "c.md").read_text()
    assert "Cross-engine comparison" in md and md.count("\n| m1") == 16
    # the same table from the CSV copy of the results
    again = write_comparison(
        results.with_suffix(".csv"), out / "d.csv", out / "d.md", out / "d.html"
    )
    pd.testing.assert_frame_equal(again, frame)
    assert (out / "d.csv").read_text() == (out / "c.csv").read_text()


def test_comparison_sorts_the_sweeps_of_a_load_together(tmp_path: Path) -> None:
    # two named sweeps of every engine; "long" written first, so the sort has to put it second
    runs = _runs(tmp_path, "long", points=("rate-1", "rate-inf"))
    runs += _runs(tmp_path, "base", points=("rate-1", "rate-2"))
    out = tmp_path / "cmp"
    results = _results(runs, tmp_path / "results.parquet")
    write_comparison(results, out / "c.csv", out / "c.md", out / "c.html")
    table = pd.read_csv(out / "c.csv", dtype=str, keep_default_na=False)
    columns = ["request-rate (req/s)", "engine", "sweep"]
    keys = list(table[columns].itertuples(index=False, name=None))
    assert keys == [
        ("1", "llamacpp", "base"),
        ("1", "llamacpp", "long"),
        ("1", "vllm", "base"),
        ("1", "vllm", "long"),
        ("2", "llamacpp", "base"),
        ("2", "vllm", "base"),
        ("inf", "llamacpp", "long"),
        ("inf", "vllm", "long"),
    ]
    page = _Table.parse((out / "c.html").read_text())
    assert page.captions[-1] == "Cross-engine comparison"
    headers = page.headers
    assert headers.index("sweep") == headers.index("quant") + 1


def test_comparison_of_points_without_a_sweep(tmp_path: Path) -> None:
    """Summaries that name no sweep still compare; their sweep is blank."""
    path = _write(
        tmp_path / "old" / "rate-1.json", _summary("rate-1", engine="e", model="m", sweep=None)
    )
    results = _results([([path], None)], tmp_path / "results.parquet")
    assert read_results(results)["sweep"].isna().all()
    frame = write_comparison(results, tmp_path / "c.csv", tmp_path / "c.md", tmp_path / "c.html")
    assert list(frame["engine"]) == ["e"] and list(frame["sweep"]) == [""]
    assert list(pd.read_csv(tmp_path / "c.csv").columns) == COMPARISON
    assert list(capacity_frame(results)["sweep"]) == [""]


def test_comparison_hides_an_unused_load_column_but_csv_keeps_it(tmp_path: Path) -> None:
    results = _results(_runs(tmp_path, points=("rate-1", "rate-2")), tmp_path / "r.parquet")
    out = tmp_path
    write_comparison(results, out / "c.csv", out / "c.md", out / "c.html")
    assert list(pd.read_csv(out / "c.csv").columns) == COMPARISON
    headers = _Table.parse((out / "c.html").read_text()).headers
    assert "concurrency" not in headers and "request-rate (req/s)" in headers
    md_header = (out / "c.md").read_text().splitlines()[2]
    assert "concurrency" not in md_header and "request-rate (req/s)" in md_header


def test_comparison_of_nothing(tmp_path: Path) -> None:
    empty = _results([], tmp_path / "r.parquet")
    assert read_results(empty).empty and read_results(empty.with_suffix(".csv")).empty
    frame = write_comparison(empty, tmp_path / "c.csv", tmp_path / "c.md", tmp_path / "c.html")
    assert frame.empty and list(pd.read_csv(tmp_path / "c.csv").columns) == COMPARISON
    assert comparison_frame(empty.with_suffix(".csv")).empty
    assert capacity_frame(empty).empty
    page = _Table.parse((tmp_path / "c.html").read_text())
    assert page.captions == ["Capacity", "Cross-engine comparison"]
    assert all(not t["rows"] for t in page.tables)


def test_comparison_page_shows_capacity_first(tmp_path: Path) -> None:
    runs = _runs(tmp_path / "r", points=("rate-1", "rate-2", "rate-4", "conc-2"))
    results = _results(runs, tmp_path / "results.parquet")
    out = tmp_path / "cmp"
    write_comparison(results, out / "c.csv", out / "c.md", out / "c.html")
    text = (out / "c.html").read_text()
    assert text.index("<caption>Capacity</caption>") < text.index(
        "<caption>Cross-engine comparison</caption>"
    )
    page = _Table.parse(text)
    assert page.captions == ["Capacity", "Cross-engine comparison"]
    capacity, comparison = page.tables
    assert capacity["headers"] == CAPACITY
    assert [r[:2] for r in capacity["rows"]] == [["tiny", "llamacpp"], ["tiny", "vllm"]]
    assert [r[-1] for r in capacity["rows"]] == ["1, 2, 4"] * 2  # open-loop rates only
    assert comparison["headers"] == COMPARISON  # both modes: both load columns
    assert len(comparison["rows"]) == 2 * 4
    # the capacity notes, then the comparison's; the CSV and Markdown hold the comparison only
    assert text.index("lower bound") < text.index("TTFT: time from sending")
    assert list(pd.read_csv(out / "c.csv").columns) == COMPARISON
    assert "capacity (req/s)" not in (out / "c.md").read_text()
    assert page.tags.count("table") == 2 and page.tags.count("script") == 0


def test_sweep_point_labels() -> None:
    assert parse_name("rate-0.5") == SweepPoint("rate", 0.5)
    assert parse_name("rate-inf") == SweepPoint("rate", math.inf)
    assert parse_name("conc-4") == SweepPoint("concurrency", 4.0)
    assert parse_name("rate-1-r2") == SweepPoint("rate", 1.0, repeat=2)
    assert parse_name("conc-8-r10") == SweepPoint("concurrency", 8.0, repeat=10)
    assert parse_name("server") is None and parse_name("rate-x") is None
    assert parse_name("rate-1-r") is None and parse_name("rate-1-x2") is None
    assert [SweepPoint("rate", x).name for x in (1.0, 0.25, math.inf)] == [
        "rate-1",
        "rate-0.25",
        "rate-inf",
    ]
    assert SweepPoint("rate", 2.5, repeat=3).name == "rate-2.5-r3"


def test_validity_column_and_capacity(tmp_path: Path) -> None:
    """validity reads "ok" or the flags; capacity is the top of the steady run from the lowest
    rate up (a steady-looking rate above a saturated one does not count), inf left out."""
    d = tmp_path / "results" / "eng" / "tiny" / "q4" / "default"
    flags = {"rate-1": [], "rate-2": ["too_short"], "rate-5": ["saturated"], "rate-8": [],
             "rate-inf": ["saturated"]}  # fmt: skip
    for label, v in flags.items():
        _write(d / "points" / f"{label}.json", _summary(label, engine="eng") | {"validity": v})
    _write(d / "server.json", synthetic_server("eng", "tiny", "q4") | {"sweep": "default"})
    paths = sorted((d / "points").glob("*.json"))
    write_engine_table(paths, d / "server.json", *_outs(d))
    table = pd.read_csv(d / "table.csv", keep_default_na=False)
    assert list(table["validity"]) == ["ok", "too_short", "saturated", "ok", "saturated"]
    assert _Table.parse((d / "table.html").read_text()).row_classes == [
        "",
        "warn",
        "warn",
        "",
        "warn",
    ]
    results = _results([(paths, d / "server.json")], tmp_path / "results.parquet")
    cap = capacity_frame(results)
    row = cap.iloc[0]
    assert (row["engine"], row["capacity"], row["first_saturated"]) == ("eng", 2.0, 5.0)
    assert row["rates"] == "1, 2, 5, 8" and row["output_throughput"] > 0
    assert row["slo"] is None and math.isnan(row["slo_capacity"])
    # an SLO between the P99 TTFT at rate 1 and at rate 2: the SLO capacity is rate 1
    frame = pd.read_csv(d / "table.csv")
    p99 = dict(zip(frame["request-rate (req/s)"], frame["P99 TTFT (ms)"], strict=True))
    slo = {"default": {"ttft_ms": (p99[1] + p99[2]) / 2}}
    row = capacity_frame(results, slo).iloc[0]
    assert (row["capacity"], row["slo_capacity"]) == (2.0, 1.0) and row["slo"].startswith(
        "P99 TTFT"
    )
    out = tmp_path / "cap"
    write_capacity(results, out / "c.csv", out / "c.md", out / "c.html", slo)
    assert list(pd.read_csv(out / "c.csv").columns) == CAPACITY
    assert pd.read_csv(out / "c.csv")["capacity (req/s)"][0] == 2
    assert pd.read_csv(out / "c.csv")["SLO capacity (req/s)"][0] == 1
    assert "lower bound" in (out / "c.md").read_text()
    # the CSV copy of the results gives the same capacity
    from_csv = capacity_frame(results.with_suffix(".csv"), slo)
    pd.testing.assert_frame_equal(from_csv, capacity_frame(results, slo))


def test_a_disturbed_point_says_nothing_of_capacity() -> None:
    """A point the machine's other work disturbed is left out of the steady run, and is no
    saturation either (even one that reads as saturated): the run goes on above it."""
    rows = [
        {"model": "m", "engine": "e", "quant": "q", "sweep": "s", "mode": "rate", "load": load,
         "validity": v, "output_throughput": 10.0 * load}
        for load, v in ((1.0, "ok"), (2.0, "ok"), (5.0, "disturbed"), (8.0, "ok"),
                        (12.0, "saturated, disturbed"), (16.0, "saturated"))
    ]  # fmt: skip
    row = capacity_of(pd.DataFrame(rows)).iloc[0]
    assert (row["capacity"], row["first_saturated"], row["output_throughput"]) == (8.0, 16.0, 80.0)


# -- repeats: means with 95% confidence intervals ---------------------------------------------

T95_2DF = 4.303  # Student's t, two-sided 95%, 2 degrees of freedom (3 repeats)
T95_1DF = 12.706  # 1 degree of freedom (2 repeats)


def _ci(values: list[float], t: float) -> tuple[float, float]:
    """Mean and 95% half-width by hand: t * sample sd / sqrt(n)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, t * sd / math.sqrt(n)


def _repeated(d: Path) -> list[Path]:
    """rate-1 measured three times (different values; two repeats saturated), rate-2 twice
    with its third repeat missing."""
    values = {
        "rate-1-r1": (100.0, 300.0, []),
        "rate-1-r2": (110.0, 310.0, ["saturated"]),
        "rate-1-r3": (130.0, 350.0, ["saturated", "too_short"]),
        "rate-2-r1": (200.0, 400.0, []),
        "rate-2-r2": (220.0, 400.0, []),
    }
    for label, (ttft, tput, flags) in values.items():
        summary = _summary(label, engine="eng")
        summary |= {"p50_ttft_ms": ttft, "output_throughput": tput, "validity": flags}
        _write(d / "points" / f"{label}.json", summary)
    _write(d / "server.json", synthetic_server("eng", "tiny", "q4") | {"sweep": "default"})
    return [d / "points" / f"{label}.json" for label in (*values, "rate-2-r3")]


def test_repeats_show_mean_and_confidence_interval(tmp_path: Path) -> None:
    d = tmp_path / "results" / "eng" / "tiny" / "q4" / "default"
    paths = _repeated(d)
    frame = write_engine_table(paths, d / "server.json", *_outs(d))
    assert list(frame["point"]) == ["rate-1", "rate-2"]
    assert list(frame["repeats"]) == [3, 2] and list(frame["status"]) == ["ok", "ok"]
    ttft1, ttft1_ci = _ci([100.0, 110.0, 130.0], T95_2DF)
    tput1, tput1_ci = _ci([300.0, 310.0, 350.0], T95_2DF)
    ttft2, ttft2_ci = _ci([200.0, 220.0], T95_1DF)
    assert (round(ttft1, 2), round(ttft1_ci, 2)) == (113.33, 37.95)
    assert (tput1, round(tput1_ci, 2)) == (320.0, 65.73)
    assert (ttft2, round(ttft2_ci, 2)) == (210.0, 127.06)

    md = (d / "table.md").read_text().splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in md[4:6]]
    rows = [dict(zip(["request-rate (req/s)", *SEED_002], r, strict=True)) for r in cells]
    assert [r["request-rate (req/s)"] for r in rows] == ["1", "2"]
    assert [r["repeats"] for r in rows] == ["3", "2"]
    assert rows[0]["P50 TTFT (ms)"] == "113.33 ± 37.95"
    assert rows[0]["output token throughput (tok/s)"] == "320.00 ± 65.73"
    assert rows[1]["P50 TTFT (ms)"] == "210.00 ± 127.06"
    assert rows[1]["output token throughput (tok/s)"] == "400.00"  # equal repeats: no ± 0
    assert rows[0]["validity"] == "saturated (2/3), too_short (1/3)"
    assert rows[1]["validity"] == "ok"
    assert "95% confidence interval" in "\n".join(md)  # the notes say what ± is

    # the HTML shows the same cells; the flagged point is marked
    page = _Table.parse((d / "table.html").read_text())
    assert page.rows[0][page.headers.index("P50 TTFT (ms)")] == "113.33 ± 37.95"
    assert page.row_classes == ["warn", ""]

    # the CSV keeps full precision: the mean, and the half-width in a column of its own
    table = pd.read_csv(d / "table.csv")
    assert list(table["repeats"]) == [3, 2]
    assert table["P50 TTFT (ms)"].tolist() == pytest.approx([ttft1, ttft2])
    assert table["P50 TTFT (ms) ±95% CI"].tolist() == pytest.approx([ttft1_ci, ttft2_ci])
    header = list(table.columns)
    assert header.index("P50 TTFT (ms) ±95% CI") == header.index("P50 TTFT (ms)") + 1
    assert table["output token throughput (tok/s) ±95% CI"].tolist() == pytest.approx(
        [tput1_ci, 0.0]
    )

    # the tidy table keeps every repeat; the comparison and capacity fold them
    results = _results([(paths, d / "server.json")], tmp_path / "results.parquet")
    tidy = read_results(results)
    assert list(tidy["point"]) == [p.stem for p in paths[:-1]] + ["rate-2-r3"]
    assert list(tidy["repeat"]) == [1, 2, 3, 1, 2, 3]
    assert list(tidy["status"]) == ["ok"] * 5 + ["missing"]
    out = tmp_path / "cmp"
    cmp = write_comparison(results, out / "c.csv", out / "c.md", out / "c.html")
    assert list(cmp["point"]) == ["rate-1", "rate-2"] and list(cmp["repeats"]) == [3, 2]
    assert cmp["p50_ttft_ms_ci95"].tolist() == pytest.approx([ttft1_ci, ttft2_ci])
    assert "113.33 ± 37.95" in (out / "c.md").read_text()
    assert "P50 TTFT (ms) ±95% CI" in pd.read_csv(out / "c.csv").columns
    row = capacity_frame(results).iloc[0]
    assert math.isnan(row["capacity"]) and row["first_saturated"] == 1.0


def test_points_without_repeats_beside_sweeps_with_them(tmp_path: Path) -> None:
    """A sweep without repeats reads the same in the comparison whether or not another sweep
    of the results has repeats (no `(1/1)` counts, no intervals)."""
    repeated = tmp_path / "results" / "eng" / "tiny" / "q4" / "default"
    runs: list[Run] = [(_repeated(repeated), repeated / "server.json")]
    plain = tmp_path / "results" / "eng" / "tiny" / "q4" / "plain"
    flags = {"rate-1": [], "rate-8": ["saturated"]}
    for label, v in flags.items():
        _write(plain / "points" / f"{label}.json", _summary(label, sweep="plain") | {"validity": v})
    _write(plain / "server.json", synthetic_server("eng", "tiny", "q4") | {"sweep": "plain"})
    runs.append(([plain / "points" / f"{label}.json" for label in flags], plain / "server.json"))
    alone = write_engine_table(*runs[1], *_outs(plain))
    results = _results(runs, tmp_path / "results.parquet")
    frame = comparison_frame(results)
    rows = frame[frame["sweep"] == "plain"]
    assert list(rows["point"]) == ["rate-1", "rate-8"] and list(rows["repeats"]) == [1, 1]
    assert list(rows["validity"]) == list(alone["validity"]) == ["ok", "saturated"]
    assert rows["p50_ttft_ms_ci95"].isna().all()
    assert list(frame[frame["sweep"] == "default"]["validity"]) == [
        "saturated (2/3), too_short (1/3)",
        "ok",
    ]
    cap = capacity_frame(results).set_index("sweep")
    assert cap.loc["plain", "capacity"] == 1.0 and cap.loc["plain", "first_saturated"] == 8.0
