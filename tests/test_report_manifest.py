"""results/manifest.json and the provenance page."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from enginebench.report.landing import provenance_html
from enginebench.report.manifest import RUN_KEYS, build_manifest, write_manifest
from enginebench.report.tables import write_engine_table
from tests.fixtures.synthetic import synthetic_server, write_synthetic_results


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tables(root: Path, written: dict[tuple[str, str, str], list[Path]], sweep: str) -> list[Path]:
    """The per-engine tables of one named sweep, next to each server.json."""
    tables = []
    for (e, m, q), paths in written.items():
        d = root / e / m / q / sweep
        write_engine_table(
            paths, d / "server.json", d / "table.csv", d / "table.md", d / "table.html"
        )
        tables.append(d / "table.csv")
    return tables


@pytest.fixture
def results(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "results"
    written = write_synthetic_results(root, points=("rate-1", "conc-2"))
    # one run on another machine, with secrets its record should never have kept
    sweep = root / "vllm" / "tiny" / "q8_0" / "default"
    server = synthetic_server("vllm", "tiny", "q8_0") | {
        "server_argv": ["vllm", "serve", "--api-key", "sk-live-123"],
        "env": {"HF_TOKEN": "hf_live", "OMP_NUM_THREADS": "8"},
        "host": {"hostname": "gpu-node", "cpu": {"model": "Other CPU"}, "gpu": {"count": 1}},
        "packages": {"vllm": "0.32.0", "torch": "2.9.0", "zzz-unrelated": "1"},
        "sweep": "default",
    }
    (sweep / "server.json").write_text(json.dumps(server))
    (sweep / "points" / "rate-1.jsonl").write_text('{"index": 0}\n')
    tables = _tables(root, written, "default")
    source = tmp_path / "resources" / "models" / "tiny" / "source.json"
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps({"source": "synthetic", "preset": "tiny", "seed": 0, "files": {}}))
    return {
        "servers": sorted(root.glob("*/*/*/*/server.json")),
        "summaries": [p for ps in written.values() for p in ps],
        "tables": tables,
        "models": [source],
        "root": root,
    }


def _write(results: dict[str, Any], out: Path) -> dict[str, Any]:
    return write_manifest(
        server_jsons=results["servers"],
        summaries=results["summaries"],
        model_sources=results["models"],
        tables=results["tables"],
        out_json=out / "manifest.json",
        out_html=out / "provenance.html",
    )


def test_manifest_lists_every_file_with_its_run(results: dict[str, Any], tmp_path: Path) -> None:
    manifest = _write(results, tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest, default=str))
    assert on_disk["schema"] == 1
    assert {"generated", "generated_by", "host", "runs", "results", "models", "tables"} <= set(
        on_disk
    )
    assert (
        len(on_disk["runs"]) == 2 and len(on_disk["results"]) == 4 and len(on_disk["tables"]) == 2
    )
    for run in on_disk["runs"]:
        assert set(RUN_KEYS) <= set(run) and "sweep" in RUN_KEYS
        assert run["server_json_sha256"] == _sha(Path(run["server_json"]))
        assert run["sweep"] == "default"
    for entry in on_disk["results"]:
        path = Path(entry["summary"])
        assert path.parent.name == "points"
        assert entry["summary_sha256"] == _sha(path)
        assert entry["run"] == str(path.parent.parent / "server.json")
        assert entry["engine"] == path.parts[-6] and entry["quant"] == "q8_0"
        assert entry["sweep"] == "default"
        assert entry["workload"] == "random-128-64" and entry["seed"] == 0
        assert entry["point"] in ("rate-1", "conc-2")
    by_summary = {Path(e["summary"]).parts[-6] + "/" + e["point"]: e for e in on_disk["results"]}
    vllm = by_summary["vllm/rate-1"]
    assert vllm["records_sha256"] == _sha(Path(vllm["records"]))
    assert vllm["records_bytes"] == len('{"index": 0}\n')
    assert by_summary["llamacpp/rate-1"]["records_sha256"] is None  # no .jsonl written
    table = on_disk["tables"][0]
    assert table["sha256"] == _sha(Path(table["path"]))
    where = (table["engine"], table["model"], table["quant"], table["sweep"])
    assert where == ("llamacpp", "tiny", "q8_0", "default")
    assert on_disk["models"]["tiny"]["preset"] == "tiny"
    assert on_disk["generated_by"]["enginebench_version"]


def test_manifest_tells_runs_apart(results: dict[str, Any]) -> None:
    manifest = build_manifest(results["servers"], results["summaries"], results["models"])
    runs = {r["engine"]: r for r in manifest["runs"]}
    assert runs["vllm"]["host"]["hostname"] == "gpu-node"
    assert runs["llamacpp"]["host"]["hostname"] == "bench-host"
    for key in ("engine_version", "engine_commit", "model_sha", "model_source", "started"):
        assert runs["vllm"][key] is not None


def test_manifest_tells_sweeps_apart(results: dict[str, Any]) -> None:
    root = results["root"]
    # a second named sweep of the same engines, models and quants: its own server.json
    long = write_synthetic_results(root, points=("rate-8",), sweep_name="long")
    tables = results["tables"] + _tables(root, long, "long")
    servers = sorted(root.glob("*/*/*/*/server.json"))
    summaries = results["summaries"] + [p for ps in long.values() for p in ps]
    manifest = build_manifest(servers, summaries, [], tables)
    runs = {(r["engine"], r["sweep"]): r for r in manifest["runs"]}
    assert len(runs) == len(manifest["runs"]) == 4
    for entry in manifest["results"]:
        sweep = "long" if entry["point"] == "rate-8" else "default"
        assert entry["sweep"] == sweep
        assert entry["run"] == runs[(entry["engine"], sweep)]["server_json"]
    assert sorted((t["engine"], t["sweep"]) for t in manifest["tables"]) == sorted(runs)
    # a summary whose server.json is not listed: no run, its place still says which sweep
    alone = build_manifest(servers[:1], summaries, [])
    orphan = next(e for e in alone["results"] if e["point"] == "rate-8")
    assert orphan["run"] is None and orphan["sweep"] == "long"
    assert orphan["engine"] == Path(orphan["summary"]).parts[-6]


def test_manifest_never_holds_secrets(results: dict[str, Any], tmp_path: Path) -> None:
    _write(results, tmp_path / "out")
    for name in ("manifest.json", "provenance.html"):
        text = (tmp_path / "out" / name).read_text()
        assert "sk-live-123" not in text and "hf_live" not in text and "HF_TOKEN" not in text
    run = next(
        r
        for r in json.loads((tmp_path / "out" / "manifest.json").read_text())["runs"]
        if r["engine"] == "vllm"
    )
    assert run["server_argv"] == ["vllm", "serve", "--api-key", "<redacted>"]
    assert run["env"] == {"OMP_NUM_THREADS": "8"}


def test_missing_summary_stays_listed(results: dict[str, Any]) -> None:
    gone = results["summaries"][0]
    gone.unlink()
    manifest = build_manifest(results["servers"], results["summaries"], [])
    entry = next(e for e in manifest["results"] if e["summary"] == str(gone))
    assert entry["summary_sha256"] is None and entry["completed"] is None
    assert entry["engine"] == gone.parts[-6] and entry["sweep"] == gone.parts[-3] == "default"
    assert entry["run"] == str(gone.parent.parent / "server.json")


def test_provenance_page(results: dict[str, Any], tmp_path: Path) -> None:
    _write(results, tmp_path / "out")
    page = (tmp_path / "out" / "provenance.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    for text in (
        "Machines the sweeps ran on",
        "gpu-node",
        "bench-host",
        "Other CPU",
        "Engine runs",
        "<th>sweep</th>",
        "vllm · tiny · q8_0 · default",
        "vllm serve --api-key &lt;redacted&gt;",
        "vllm=0.32.0, torch=2.9.0",
        "random-128-64",
        "preset=tiny",
        "results/manifest.json",
    ):
        assert text in page, text
    assert "zzz-unrelated" not in page  # the page shows key packages; the manifest has all


def test_provenance_page_escapes_and_tolerates_blanks() -> None:
    page = provenance_html({"runs": [{"engine": "<i>e</i>", "host": None}], "results": []})
    assert "<i>e" not in page and "&lt;i&gt;e&lt;/i&gt;" in page
    assert "Provenance" in provenance_html({})


def test_runs_left_out_are_named_in_the_manifest_and_on_the_page(results: dict[str, Any]) -> None:
    gone = "results/llamacpp/tiny/q8_0/<decode>"
    manifest = build_manifest(results["servers"], results["summaries"], [], left_out=[gone])
    assert manifest["left_out"] == [gone]
    page = provenance_html(manifest)
    assert "Partial:</b> 1 configured run(s) did not complete" in page
    assert "results/llamacpp/tiny/q8_0/&lt;decode&gt;" in page
    assert "Partial" not in provenance_html(build_manifest(results["servers"], [], []))
