"""`bench --num-workers`: one schedule split over processes, merged into one result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from enginebench.loadgen import workers
from enginebench.loadgen.runner import main
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread

FIXED = ["--model", "fake-model", "--dataset-name", "fixed", "--fixed-output-len", "4"]


def _run(url: str, out: Path, n_workers: int, *extra: str) -> tuple[dict, list[dict]]:
    argv = ["--base-url", url, *FIXED, "--num-prompts", "90", "--request-rate", "60",
            "--seed", "3", "--num-workers", str(n_workers), "--save-result", "--result-dir",
            str(out), "--result-filename", f"w{n_workers}.json", *extra]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(x) for x in (out / f"w{n_workers}.jsonl").read_text().splitlines()]
    return json.loads((out / f"w{n_workers}.json").read_text()), rows


def test_workers_send_the_one_process_schedule_merged_into_one_result(tmp_path: Path) -> None:
    with serve_in_thread(FakeServerConfig(tokens=4)) as srv:
        one, rows1 = _run(srv.base_url, tmp_path, 1)
        three, rows3 = _run(srv.base_url, tmp_path, 3)
    assert one["num_workers"] == 1 and "per_worker" not in one
    assert three["num_workers"] == 3 and three["completed"] == 90 == len(rows3)
    # same seed: the same send times, request by request, whichever process sent them
    assert [r["index"] for r in rows3] == list(range(90))
    assert [r["scheduled_s"] for r in rows3] == [r["scheduled_s"] for r in rows1]
    # each request went out at its time from the one shared start (not each worker's own)
    assert max(r["dispatch_lag_s"] for r in rows3) < 0.5
    assert max(r["sent_s"] for r in rows3) < 90 / 60 * 3  # not three schedules in a row
    per = three["per_worker"]
    assert [w["worker"] for w in per] == [0, 1, 2]
    assert [w["sent"] for w in per] == [30, 30, 30] and sum(w["completed"] for w in per) == 90
    # each worker offered a third of the rate (Poisson: within a loose band)
    assert all(5 < w["achieved_request_rate"] < 60 for w in per)
    assert all(w["dispatch_lag_ms"]["p99"] >= w["dispatch_lag_ms"]["p50"] for w in per)


def test_auto_workers_and_the_checks(capsys: pytest.CaptureFixture[str]) -> None:
    cpus = len(os.sched_getaffinity(0))
    assert workers.auto_workers(500, None) == 1
    assert workers.auto_workers(float("inf"), None) == 1 and workers.auto_workers(None, 4) == 1
    assert workers.auto_workers(3500, None) == min(4, max(1, cpus - 1))
    assert workers.auto_workers(3500, 2) <= 2
    assert workers.shares(7, 3) == [[0, 3, 6], [1, 4], [2, 5]]
    argv = ["--base-url", "http://127.0.0.1:9", *FIXED, "--concurrency", "2", "--num-workers", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--num-workers 2 applies to an open loop" in err and "fix:" in err
    argv = ["--base-url", "http://127.0.0.1:9", *FIXED, "--request-rate", "5",
            "--max-concurrency", "2", "--num-workers", "3"]  # fmt: skip
    assert main(argv) == 2
    assert "fewer than one each" in capsys.readouterr().err


def test_ctrl_c_with_workers_keeps_what_completed_and_leaves_no_worker(tmp_path: Path) -> None:
    with serve_in_thread(FakeServerConfig(tokens=10, token_delay_s=0.01)) as srv:
        argv = [sys.executable, "-m", "enginebench", "bench", "--base-url", srv.base_url,
                *FIXED, "--num-prompts", "400", "--request-rate", "20", "--num-workers", "2",
                "--save-result", "--result-dir", str(tmp_path), "--result-filename",
                "r.json"]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            argv, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while srv.stats.requests < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        kids = psutil.Process(proc.pid).children(recursive=True)
        assert len(kids) >= 2  # the workers (and multiprocessing's resource tracker)
        # a terminal's Ctrl-C reaches the whole group; the workers leave it to the main process
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads((tmp_path / "r.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert summary["interrupted"] is True and summary["num_workers"] == 2
    assert 0 < summary["completed"] == len(rows) < 400
    assert {r["index"] % 2 for r in rows} == {0, 1}  # both workers' requests were kept
    assert not [k for k in kids if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]
