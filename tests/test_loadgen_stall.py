"""A server that stops sending mid-stream (a wedged device or scheduler) ends the point in
bounded time: the requests in flight fail as stalled, the completed ones are kept, exit 4."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from enginebench.loadgen.errors import EXIT_STALLED
from enginebench.loadgen.runner import main
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread


def _argv(base_url: str, out: Path, *extra: str) -> list[str]:
    return [
        "--base-url", base_url, "--model", "fake-model", "--dataset-name", "fixed",
        "--fixed-output-len", "8", "--num-prompts", "12", "--save-result",
        "--result-dir", str(out), "--result-filename", "s.json", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("load", [["--request-rate", "50"], ["--concurrency", "4"]])
def test_a_stalled_stream_stops_the_point(tmp_path: Path, load: list[str]) -> None:
    """Requests from the 6th on send one chunk and then nothing: the point stops ~2 s after
    the last byte (--stall-timeout 2), not at the request timeout."""
    cfg = FakeServerConfig(tokens=8, stall_after=1, stall_from=5)
    with serve_in_thread(cfg) as srv:
        t0 = time.monotonic()
        code = main(_argv(srv.base_url, tmp_path, "--stall-timeout", "2", *load))
        took = time.monotonic() - t0
    assert code == EXIT_STALLED and took < 10
    summary = json.loads((tmp_path / "s.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert summary["stalled"] is True and "stalled" in summary["validity"]
    assert summary["stall_limit_s"] == 2.0 and summary["completed"] == 5
    stalled = [r for r in rows if r["error_kind"] == "stalled"]
    assert stalled and all(r["status"] == "failed" for r in stalled)
    assert summary["errors_by_kind"]["stalled"] == len(stalled) == summary["failed"]


def test_a_stalled_warm_up_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(FakeServerConfig(tokens=8, stall_after=1)) as srv:
        t0 = time.monotonic()
        code = main(_argv(srv.base_url, tmp_path, "--stall-timeout", "1", "--num-warmups", "2",
                          "--request-rate", "50"))  # fmt: skip
        took = time.monotonic() - t0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == EXIT_STALLED and took < 8
    assert err.startswith("enginebench bench: error: the warm-up stalled") and "fix:" in err


def test_a_slow_but_steady_server_is_not_a_stall(tmp_path: Path) -> None:
    """Tokens every 0.3 s with a 1 s limit: no stall (the limit is on silence, not on length)."""
    with serve_in_thread(FakeServerConfig(tokens=8, token_delay_s=0.3)) as srv:
        code = main(_argv(srv.base_url, tmp_path, "--stall-timeout", "1", "--concurrency", "2",
                          "--num-prompts", "4"))  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "s.json").read_text())["stalled"] is False
