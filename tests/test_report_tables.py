"""Per-engine tables and the cross-engine comparison from synthetic summaries."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from enginebench.report.points import SweepPoint, parse_point
from enginebench.report.synthetic import (
    SYNTHETIC_GPU,
    synthetic_provenance,
    synthetic_server,
    synthetic_summary,
    write_synthetic_results,
)
from enginebench.report.tables import (
    comparison_frame,
    read_engine_table,
    write_comparison,
    write_engine_table,
)

SEED_002 = [
    "num-prompts",
    "duration (s)",
    "total input tokens",
    "total generated tokens",
    "request throughput (req/s)",
    "input token throughput (tok/s)",
    "output token throughput (tok/s)",
    "request goodput (req/s)",
    "output goodput (tok/s)",
    "P50 TTFT (ms)",
    "P90 TTFT (ms)",
    "P99 TTFT (ms)",
    "P50 TPOT (ms)",
    "P90 TPOT (ms)",
    "P99 TPOT (ms)",
    "failed requests",
    "short outputs",
    "validity",
    "achieved / offered",
    "shared prefix (tokens)",
    "cached prompt tokens (engine)",
    "unrequested cache hits",
    "engine P50 TPOT (ms)",
    "harness TPOT overhead (ms)",
    "harness TTFT overhead (ms)",
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
    "p90_ttft_ms": 52.5,
    "p99_ttft_ms": 99.25,
    "p50_tpot_ms": 11.5,
    "p90_tpot_ms": 13.75,
    "p99_tpot_ms": 17.125,
    "metadata": {"engine": "meta-engine", "model": "meta-model", "engine_commit": "null"},
}


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _summary(label: str, **kw: Any) -> dict[str, Any]:
    point = parse_point(label)
    assert point is not None
    return synthetic_summary(point, **kw)


def _outs(d: Path) -> tuple[Path, Path, Path]:
    return d / "table.csv", d / "table.md", d / "table.html"


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
        "duration (s)": 25.5,
        "total input tokens": 6144,
        "total generated tokens": 3071,
        "request throughput (req/s)": pytest.approx(1.8823529411764706),
        "input token throughput (tok/s)": 240.94,
        "output token throughput (tok/s)": 120.43,
        "P50 TTFT (ms)": 31.0,  # no p50 key: the median
        "P90 TTFT (ms)": 52.5,
        "P99 TTFT (ms)": 99.25,
        "P50 TPOT (ms)": 11.5,
        "P90 TPOT (ms)": 13.75,
        "P99 TPOT (ms)": 17.125,
        "failed requests": 2,
        "short outputs": 1,
        "engine": "meta-engine",  # no server.json, no results layout: the summary's metadata
        "model": "meta-model",
    }
    assert {k: row[k] for k in expected} == expected
    # unknown provenance stays blank; metadata's "null" is not a commit
    unknown = ("engine version", "engine commit", "model sha", "quant", "sweep")
    assert all(pd.isna(row[k]) for k in unknown)
    ints = pd.read_csv(d / "table.csv").dtypes
    assert ints["num-prompts"].kind == "i" and ints["total generated tokens"].kind == "i"


def test_engine_account_beside_ours_and_unrequested_cache_hits_marked(sweep: Path) -> None:
    points = sweep / "points"
    account = {"engine_cached_prompt_tokens": 0, "requests_with_unrequested_cache_hits": 0,
               "median_engine_decode_ms_per_token": 11.0, "harness_tpot_overhead_ms": 0.4,
               "harness_ttft_overhead_ms": 1.5, "shared_prefix_len": 0}  # fmt: skip
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
    write_comparison([sweep / "table.csv"], *_outs(sweep.parent / "cmp"))
    cmp = pd.read_csv(sweep.parent / "cmp" / "table.csv")
    assert list(cmp["unrequested cache hits"][:3]) == [0, 5, 0]


def test_input_throughput_and_num_prompts_fallbacks(tmp_path: Path) -> None:
    data = {k: v for k, v in HAND.items() if k not in ("input_throughput", "num_prompts")}
    path = _write(tmp_path / "rate-2.json", data)
    write_engine_table([path], None, *_outs(tmp_path))
    row = pd.read_csv(tmp_path / "table.csv").iloc[0]
    assert row["input token throughput (tok/s)"] == pytest.approx(6144 / 25.5)
    assert row["num-prompts"] == 50  # completed + failed


def test_provenance_from_path_and_server_json(sweep: Path) -> None:
    server = synthetic_server("eng", "tiny", "q4") | {
        "engine_version": "b4567",
        "model_sha": None,
        "sweep": "nightly",  # server.json comes before the path's sweep directory
    }
    _write(sweep / "server.json", server)
    summary = sweep / "points" / "rate-2.json"
    write_engine_table([summary], sweep / "server.json", *_outs(sweep))
    row = pd.read_csv(sweep / "table.csv", dtype=str).iloc[0]
    assert row["engine version"] == "b4567"
    assert pd.isna(row["model sha"])
    assert row["sweep"] == "nightly"
    # without server.json, engine/model/quant/sweep still come from the results layout
    write_engine_table([summary], None, *_outs(sweep))
    row = pd.read_csv(sweep / "table.csv", dtype=str).iloc[0]
    assert (row["engine"], row["quant"], row["sweep"]) == ("eng", "q4", "default")
    assert row["model"] == "tiny"  # summary metadata, then the path
    assert (sweep / "table.md").read_text().startswith("# eng · tiny · q4 · default\n")
    # outside a points/ directory the path says nothing (the summary's metadata still does)
    old = _write(sweep.parent / "sweep" / "rate-2.json", _summary("rate-2", engine="eng"))
    write_engine_table([old], None, *_outs(sweep))
    row = pd.read_csv(sweep / "table.csv", dtype=str).iloc[0]
    assert row["engine"] == "eng" and pd.isna(row["quant"]) and pd.isna(row["sweep"])


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
    assert table.iloc[3].drop(["request-rate (req/s)", *PROVENANCE, *DETAILS]).isna().all()
    assert table.iloc[3]["engine"] == "eng" and table.iloc[3]["sweep"] == "default"
    md = (sweep / "table.md").read_text()
    assert md.count("—") >= 15 and "not measured" in md
    html = (sweep / "table.html").read_text()
    rows = _Table.parse(html).row_classes
    assert rows == ["warn", "", "missing warn", "missing"]


def test_bad_point_name_without_summary_keys(tmp_path: Path) -> None:
    path = _write(tmp_path / "weird.json", {"num_prompts": 1})
    with pytest.raises(ValueError, match="sweep point"):
        write_engine_table([path], None, *_outs(tmp_path))


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
    write_engine_table(sorted(mixed.glob("*.json")), None, *_outs(mixed))
    table = pd.read_csv(mixed / "table.csv")
    assert table.columns[0] == "request-rate (req/s) / concurrency"
    assert list(table.iloc[:, 0]) == ["1", "inf", "conc-1", "conc-4"]
    back = read_engine_table(mixed / "table.csv")
    assert list(back["mode"]) == ["rate", "rate", "concurrency", "concurrency"]
    assert list(back["load"]) == [1, math.inf, 1, 4]


def test_read_back_round_trip(sweep: Path) -> None:
    frame = write_engine_table(
        sorted((sweep / "points").glob("rate-*.json")), sweep / "server.json", *_outs(sweep)
    )
    back = read_engine_table(sweep / "table.csv")
    assert list(back["point"]) == list(frame["point"])
    for key in ("request_throughput", "p99_ttft_ms", "p50_tpot_ms", "output_throughput"):
        assert back[key].tolist() == pytest.approx(frame[key].tolist(), rel=1e-9)
    assert back["engine_version"].tolist() == ["1.2.3"] * 4
    assert back["sweep"].tolist() == ["default"] * 4
    assert back["workload"].tolist() == ["random-128-64"] * 4  # CSV-only columns come back
    assert back["memory_bytes"].tolist() == [str(64 * 2**30)] * 4
    # a header this reader does not know is ignored
    wider = pd.read_csv(sweep / "table.csv", dtype=str, keep_default_na=False)
    wider["from a newer writer"] = "x"
    wider.to_csv(sweep / "wider.csv", index=False)
    again = read_engine_table(sweep / "wider.csv")
    assert list(again.columns) == list(back.columns)
    assert again["p99_ttft_ms"].tolist() == back["p99_ttft_ms"].tolist()


def test_engine_version_stays_text(tmp_path: Path) -> None:
    """`0.10` must not come back as the number 0.1."""
    d = tmp_path / "r" / "e" / "m" / "q" / "default"
    _write(d / "points" / "rate-1.json", _summary("rate-1"))
    _write(d / "server.json", synthetic_server("e", "m", "q") | {"engine_version": "0.10"})
    write_engine_table([d / "points" / "rate-1.json"], d / "server.json", *_outs(d))
    assert read_engine_table(d / "table.csv")["engine_version"][0] == "0.10"


def test_markdown_formatting(sweep: Path) -> None:
    write_engine_table([sweep / "points" / "rate-inf.json"], sweep / "server.json", *_outs(sweep))
    md = (sweep / "table.md").read_text().splitlines()
    assert md[0] == "# eng · tiny · q4 · default"
    header, rule, row = md[2], md[3], md[4]
    assert header.startswith("|") and "P99 TPOT (ms)" in header
    assert set(rule) <= {"|", "-", ":"}
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "inf"
    assert cells[1] == "100"
    assert cells[10] == "2,000.00"  # P50 TTFT, thousands separator and 2 decimals, kept as is
    assert cells[5] == "7.840"  # req/s with 3 decimals
    assert cells[28] == "0123456789ab" and cells[30] == "f" * 12  # hashes shortened
    assert len(cells) == 1 + len(SEED_002) and cells[-1] == "default"  # the sweep, last


class _Table(HTMLParser):
    """Collects the structure of our one-table HTML documents."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.headers: list[str] = []
        self.rows: list[list[str]] = []
        self.row_classes: list[str] = []
        self.titles: list[str] = []
        self.style = ""
        self._cell: list[str] | None = None
        self._where = ""

    @classmethod
    def parse(cls, text: str) -> _Table:
        parser = cls()
        parser.feed(text)
        return parser

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag in ("thead", "tbody", "style"):
            self._where = tag
        if tag == "tr" and self._where == "tbody":
            self.rows.append([])
            self.row_classes.append(a.get("class") or "")
        if tag in ("td", "th"):
            self._cell = []
            if a.get("title"):
                self.titles.append(a["title"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            (self.headers if tag == "th" else self.rows[-1]).append(text)
            self._cell = None
        if tag == "style":
            self._where = ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._where == "style":
            self.style += data


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
    assert "f" * 64 in table.titles  # the full sha in a tooltip
    assert table.tags.count("table") == 1 and "caption" in table.tags


def test_html_escapes_values(tmp_path: Path) -> None:
    d = tmp_path / "r" / "e" / "m" / "q" / "default"
    _write(d / "points" / "rate-1.json", _summary("rate-1"))
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
    back = read_engine_table(d / "table.csv")
    assert back["started"].tolist() == [t for t, _ in POINT_TIMES.values()]


def test_summary_without_provenance_falls_back_to_server_json(tmp_path: Path) -> None:
    d = tmp_path / "r" / "eng" / "tiny" / "q4" / "default"
    server = synthetic_provenance("eng", "tiny", "q4", gpu=SYNTHETIC_GPU) | {
        "engine_version": "7.0",
        "workload": "sharegpt",
        "started": "2025-05-05T05:00:00+00:00",
        "finished": "2025-05-05T06:00:00+00:00",
        "packages": {"vllm": "0.9.0"},
    }
    _write(d / "server.json", server)
    old = _write(d / "points" / "rate-1.json", _summary("rate-1", engine="eng"))
    assert "provenance" not in json.loads(old.read_text())
    write_engine_table([old], d / "server.json", *_outs(d))
    row = _csv_rows(d)[0]
    assert row["engine version"] == "7.0" and row["workload"] == "sharegpt"
    assert row["GPU"] == "NVIDIA H100 80GB HBM3" and row["CUDA version"] == "12.4"
    assert row["host"] == "bench-host" and row["model file sha256"] == "e" * 64
    # no times of its own: the whole sweep's
    assert (row["started"], row["finished"]) == (server["started"], server["finished"])
    # a provenance block without times (or with nulls) also takes server.json's
    block = synthetic_provenance("eng", "tiny", "q4") | {"started": None}
    block.pop("finished")
    _write(old, _summary("rate-1", engine="eng", provenance=block))
    write_engine_table([old], d / "server.json", *_outs(d))
    row = _csv_rows(d)[0]
    assert (row["started"], row["finished"]) == (server["started"], server["finished"])
    assert row["engine version"] == "1.2.3"  # but the rest is the summary's
    # no provenance, no server.json: the summary's metadata
    meta = _summary("rate-1") | {"metadata": {"engine": "e", "workload": "w1", "seed": 7}}
    _write(old, meta)
    write_engine_table([old], None, *_outs(d))
    row = _csv_rows(d)[0]
    assert (row["workload"], row["seed"]) == ("w1", "7")
    assert row["host"] == "" and row["server env"] == "" and row["started"] == ""


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
    # the summary's provenance first; server.json's for a summary that carries none
    server = synthetic_server("eng", "tiny", "q4") | {"source_commit": "b" * 40}
    paths = _stamped(d, server, source_commit="c" * 40)
    old = _write(d / "points" / "rate-2.json", _summary("rate-2", engine="eng"))
    write_engine_table([*paths, old], d / "server.json", *_outs(d))
    rows = _csv_rows(d)
    assert [r["source commit"] for r in rows] == ["c" * 40, "b" * 40, "c" * 40]  # full sha
    header = list(rows[0])
    assert header.index("source commit") == header.index("model path") + 1
    assert read_engine_table(d / "table.csv")["source_commit"].tolist()[0] == "c" * 40
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
    paths.append(_write(d / "points" / "rate-2.json", _summary("rate-2")))  # no env anywhere
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
    "request throughput (req/s)",
    "output token throughput (tok/s)",
    "P50 TTFT (ms)",
    "P99 TTFT (ms)",
    "P50 TPOT (ms)",
    "P99 TPOT (ms)",
    "engine P50 TPOT (ms)",
    "failed requests",
    "short outputs",
    "unrequested cache hits",
    "validity",
]


def _tables(root: Path, sweep_name: str = "default", **kw: Any) -> list[Path]:
    """Synthetic results of one named sweep, and their per-engine tables next to server.json."""
    written = write_synthetic_results(root, sweep_name=sweep_name, **kw)
    csvs = []
    for (e, m, q), paths in written.items():
        d = root / e / m / q / sweep_name
        write_engine_table(paths, d / "server.json", *_outs(d))
        csvs.append(d / "table.csv")
    return csvs


def test_comparison_lines_up_loads_across_engines(tmp_path: Path) -> None:
    csvs = _tables(
        tmp_path,
        engines=("vllm", "llamacpp"),
        models=("m2", "m1"),
        quants=("q8", "q4"),
        points=("rate-inf", "rate-1", "conc-2", "rate-4"),
    )
    out = tmp_path / "cmp"
    frame = write_comparison(list(reversed(csvs)), out / "c.csv", out / "c.md", out / "c.html")
    table = pd.read_csv(out / "c.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == COMPARISON
    assert len(table) == 2 * 2 * 2 * 4
    assert set(table["sweep"]) == {"default"}
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


def test_comparison_sorts_the_sweeps_of_a_load_together(tmp_path: Path) -> None:
    # two named sweeps of every engine; "long" written first, so the sort has to put it second
    csvs = _tables(tmp_path, "long", points=("rate-1", "rate-inf"))
    csvs += _tables(tmp_path, "base", points=("rate-1", "rate-2"))
    out = tmp_path / "cmp"
    write_comparison(csvs, out / "c.csv", out / "c.md", out / "c.html")
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
    headers = _Table.parse((out / "c.html").read_text()).headers
    assert headers.index("sweep") == headers.index("quant") + 1


def test_comparison_of_a_table_without_a_sweep_column(tmp_path: Path) -> None:
    """A per-engine table written before sweeps were named still reads; its sweep is blank."""
    old = tmp_path / "t.csv"
    pd.DataFrame(
        {"request-rate (req/s)": ["1"], "engine": ["e"], "model": ["m"], "quant": ["q"]}
    ).to_csv(old, index=False)
    frame = write_comparison([old], tmp_path / "c.csv", tmp_path / "c.md", tmp_path / "c.html")
    assert list(frame["engine"]) == ["e"] and list(frame["sweep"]) == [""]
    assert list(pd.read_csv(tmp_path / "c.csv").columns) == COMPARISON


def test_comparison_hides_an_unused_load_column_but_csv_keeps_it(tmp_path: Path) -> None:
    csvs = _tables(tmp_path, points=("rate-1", "rate-2"))
    out = tmp_path
    write_comparison(csvs, out / "c.csv", out / "c.md", out / "c.html")
    assert list(pd.read_csv(out / "c.csv").columns) == COMPARISON
    headers = _Table.parse((out / "c.html").read_text()).headers
    assert "concurrency" not in headers and "request-rate (req/s)" in headers


def test_comparison_of_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "t.csv"
    pd.DataFrame(columns=["request-rate (req/s)", *SEED_002]).to_csv(empty, index=False)
    frame = write_comparison([empty], tmp_path / "c.csv", tmp_path / "c.md", tmp_path / "c.html")
    assert frame.empty and list(pd.read_csv(tmp_path / "c.csv").columns) == COMPARISON
    assert comparison_frame([]).empty


def test_not_a_table(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="offered-load"):
        read_engine_table(bad)


def test_sweep_point_labels() -> None:
    assert parse_point("rate-0.5") == SweepPoint("rate", 0.5)
    assert parse_point("rate-inf") == SweepPoint("rate", math.inf)
    assert parse_point("conc-4") == SweepPoint("concurrency", 4.0)
    assert parse_point("server") is None and parse_point("rate-x") is None
    assert [SweepPoint("rate", x).label for x in (1.0, 0.25, math.inf)] == [
        "rate-1",
        "rate-0.25",
        "rate-inf",
    ]


def test_validity_column_and_capacity(tmp_path: Path) -> None:
    """validity reads "ok" or the flags; capacity is the top of the steady run from the lowest
    rate up (a steady-looking rate above a saturated one does not count), inf left out."""
    from enginebench.report.tables import capacity_frame, write_capacity

    d = tmp_path / "results" / "eng" / "tiny" / "q4" / "default"
    flags = {"rate-1": [], "rate-2": ["too_short"], "rate-5": ["saturated"], "rate-8": [],
             "rate-inf": ["saturated"]}  # fmt: skip
    for label, v in flags.items():
        _write(d / "points" / f"{label}.json", _summary(label) | {"validity": v})
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
    cap = capacity_frame([d / "table.csv"])
    row = cap.iloc[0]
    assert (row["engine"], row["capacity"], row["first_saturated"]) == ("eng", 2.0, 5.0)
    assert row["rates"] == "1, 2, 5, 8" and row["output_throughput"] > 0
    assert row["slo"] is None and math.isnan(row["slo_capacity"])
    # an SLO between the P99 TTFT at rate 1 and at rate 2: the SLO capacity is rate 1
    frame = pd.read_csv(d / "table.csv")
    p99 = dict(zip(frame["request-rate (req/s)"], frame["P99 TTFT (ms)"], strict=True))
    slo = {"default": {"ttft_ms": (p99[1] + p99[2]) / 2}}
    row = capacity_frame([d / "table.csv"], slo).iloc[0]
    assert (row["capacity"], row["slo_capacity"]) == (2.0, 1.0) and row["slo"].startswith(
        "P99 TTFT"
    )
    out = tmp_path / "cap"
    write_capacity([d / "table.csv"], out / "c.csv", out / "c.md", out / "c.html", slo)
    assert pd.read_csv(out / "c.csv")["capacity (req/s)"][0] == 2
    assert pd.read_csv(out / "c.csv")["SLO capacity (req/s)"][0] == 1
    assert "lower bound" in (out / "c.md").read_text()
