"""tools/migrate_summaries.py: summaries get the `point` and `provenance` the load generator now
writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from enginebench.report.load import point_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from migrate_summaries import migrate


def test_a_summary_without_its_point_gets_it_from_its_name_once(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "vllm_m_hf_default"
    run.mkdir(parents=True)
    (run / "server.json").write_text("{}")
    for name in ("rate-2", "rate-inf", "conc-4-r2"):
        (run / f"{name}.json").write_text(json.dumps({"completed": 1, "request_rate": 2}))
    own = {"completed": 1, "point": {"name": "x"}, "provenance": {"engine": "e"}}
    (run / "rate-8.json").write_text(json.dumps(own))
    changed = migrate(tmp_path)
    assert [p.stem for p in changed] == ["conc-4-r2", "rate-2", "rate-inf"]
    inf = json.loads((run / "rate-inf.json").read_text())
    assert inf["point"] == {"name": "rate-inf", "mode": "rate", "load": "inf", "repeat": 0}
    assert inf["completed"] == 1  # the rest as it was
    conc = json.loads((run / "conc-4-r2.json").read_text())
    assert point_of(Path("renamed.json"), conc).name == "conc-4-r2"  # read from the summary
    assert json.loads((run / "rate-8.json").read_text()) == own  # untouched
    assert json.loads((run / "server.json").read_text()) == {}
    assert migrate(tmp_path) == []  # once


def test_a_summary_without_provenance_gets_its_runs(tmp_path: Path) -> None:
    """server.json's record first, then the summary's metadata; no point times of its own."""
    run = tmp_path / "vllm" / "m" / "hf" / "default"
    (run / "points").mkdir(parents=True)
    server = {"engine": "vllm-2", "kind": None, "engine_version": "0.9", "argv": ["x"],
              "packages": {"vllm": "0.9"}, "started": "2025-01-01T00:00:00+00:00"}  # fmt: skip
    (run / "server.json").write_text(json.dumps(server))
    meta = {"engine": "ignored", "workload": "w1", "seed": "7"}
    summary = {"completed": 1, "metadata": meta, "point": {"name": "rate-1"}}
    (run / "points" / "rate-1.json").write_text(json.dumps(summary))
    assert migrate(tmp_path) == [run / "points" / "rate-1.json"]
    prov = json.loads((run / "points" / "rate-1.json").read_text())["provenance"]
    assert (prov["engine"], prov["kind"], prov["engine_version"]) == ("vllm-2", "vllm-2", "0.9")
    assert (prov["workload"], prov["seed"]) == ("w1", "7")
    assert prov["started"] is None and "packages" not in prov and "argv" not in prov
    assert migrate(tmp_path) == []
