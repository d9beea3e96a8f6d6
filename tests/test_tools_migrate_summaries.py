"""tools/migrate_summaries.py: published summaries get the `point` the load generator now writes."""

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
    (run / "rate-8.json").write_text(json.dumps({"completed": 1, "point": {"name": "x"}}))
    changed = migrate(tmp_path)
    assert [p.stem for p in changed] == ["conc-4-r2", "rate-2", "rate-inf"]
    inf = json.loads((run / "rate-inf.json").read_text())
    assert inf["point"] == {"name": "rate-inf", "mode": "rate", "load": "inf", "repeat": 0}
    assert inf["completed"] == 1  # the rest as it was
    conc = json.loads((run / "conc-4-r2.json").read_text())
    assert point_of(Path("renamed.json"), conc).name == "conc-4-r2"  # read from the summary
    assert json.loads((run / "rate-8.json").read_text())["point"] == {"name": "x"}  # untouched
    assert json.loads((run / "server.json").read_text()) == {}
    assert migrate(tmp_path) == []  # once
