"""Bad input: one-line errors naming the problem and the fix, exit statuses, partial results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enginebench.loadgen.runner import main
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread
from tests.test_loadgen_support import SHAREGPT_SMALL

FIXED = ["--model", "fake-model", "--dataset-name", "fixed", "--fixed-output-len", "4"]


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err_lines) == 1, err_lines
    assert "fix:" in err_lines[0]
    return err_lines[0]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--request-rate", "0"], "must be > 0"),
        (["--request-rate", "-3"], "must be > 0"),
        (["--request-rate", "fast"], "not a number"),
        (["--burstiness", "0"], "--burstiness"),
        (["--metric-percentiles", "50,101"], "outside [0, 100]"),
        (["--metric-percentiles", "-1"], "outside [0, 100]"),
        (["--metric-percentiles", "x"], "not a list of numbers"),
        (["--percentile-metrics", "ttft,latency"], "unknown metric"),
        (["--goodput", "ttft=5"], "--goodput"),
        (["--goodput", "speed:5"], "--goodput"),
        (["--goodput", "ttft:-1"], "--goodput"),
        (["--metadata", "novalue"], "KEY=VALUE"),
        (["--concurrency", "2", "--request-rate", "3"], "cannot be combined"),
        (["--num-prompts", "0"], "must be >= 1"),
        (
            [
                "--dataset-name",
                "sharegpt",
                "--dataset-path",
                "/nonexistent.json",
                "--tokenizer",
                "x",
            ],
            "",
        ),
        (["--dataset-path", "x.json"], "only read by --dataset-name sharegpt"),
        (["--extra-body", "[1]"], "JSON object"),
        # a summary never names a point it did not measure
        (["--request-rate", "2", "--point", "rate-3"], "is not this run's load (rate-2)"),
        (["--concurrency", "4", "--point", "rate-4"], "is not this run's load (conc-4)"),
        (["--point", "fast"], "is not a point name"),
        (["--provenance-file", "/nonexistent.json"], "--provenance-file /nonexistent.json"),
        (["--bogus-flag"], "unrecognized arguments"),
    ],
)
def test_bad_flags(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    assert main(["--base-url", "http://127.0.0.1:9", *argv]) == 2
    assert needle in one_error_line(capsys)


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--request-rate" in capsys.readouterr().out


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--base-url", "http://127.0.0.1:9", *FIXED]) == 1
    line = one_error_line(capsys)
    assert "cannot reach the server" in line and "--base-url" in line


def test_missing_dataset_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        "--base-url",
        "http://127.0.0.1:9",
        "--dataset-name",
        "sharegpt",
        "--dataset-path",
        str(tmp_path / "none.json"),
        "--tokenizer",
        str(tmp_path),
    ]
    # the tokenizer is checked first: an empty directory is not one
    assert main(argv) == 2
    assert "tokenizer" in one_error_line(capsys)


def test_not_sharegpt_shaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from tests.test_loadgen_support import make_tokenizer_dir

    tok = make_tokenizer_dir(tmp_path / "tok")
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    argv = [
        "--base-url",
        "http://127.0.0.1:9",
        "--dataset-name",
        "sharegpt",
        "--tokenizer",
        str(tok),
    ]
    assert main([*argv, "--dataset-path", str(bad)]) == 2
    assert "not ShareGPT-shaped" in one_error_line(capsys)
    assert main([*argv, "--dataset-path", str(tmp_path / "missing.json")]) == 2
    assert "not found" in one_error_line(capsys)
    ok = main([*argv, "--dataset-path", str(SHAREGPT_SMALL), "--num-prompts", "2"])
    assert ok == 1 and "cannot reach" in one_error_line(capsys)  # the dataset itself was fine


def test_missing_api_key_env(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EB_TEST_KEY", raising=False)
    with serve_in_thread() as srv:
        assert main(["--base-url", srv.base_url, *FIXED, "--api-key-env", "EB_TEST_KEY"]) == 2
    assert "EB_TEST_KEY" in one_error_line(capsys)


def test_wrong_model_name_checked_against_models_list(capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread() as srv:
        assert main(["--base-url", srv.base_url, *FIXED, "--model", "other"]) == 1
        line = one_error_line(capsys)
        assert "'other' is not served" in line and "fake-model" in line
        assert srv.stats.requests == 0  # stopped before sending anything


def test_wrong_model_name_404_stops_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with serve_in_thread() as srv:
        argv = [
            "--base-url",
            srv.base_url,
            *FIXED,
            "--model",
            "other",
            "--no-model-check",
            "--num-prompts",
            "50",
            "--request-rate",
            "200",
            "--save-result",
            "--result-dir",
            str(tmp_path),
            "--result-filename",
            "r.json",
        ]
        assert main(argv) == 1
        assert srv.stats.requests < 50  # aborted, not 50 doomed requests
    line = one_error_line(capsys)
    assert "HTTP 404" in line and "--model" in line
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert rows and rows[0]["error_kind"] == "http_404"  # what completed is written
    assert json.loads((tmp_path / "r.json").read_text())["error"].startswith("the server rejected")


def test_unknown_field_rejected_names_the_dialect_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(FakeServerConfig(reject_unknown_fields=True)) as srv:
        assert main(["--base-url", srv.base_url, *FIXED]) == 1
        assert "--ignore-eos-style" in one_error_line(capsys)
        style = ["--ignore-eos-style", "generation_config"]
        assert main(["--base-url", srv.base_url, *FIXED, *style, "--num-prompts", "3"]) == 0


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        (FakeServerConfig(fail_fraction=1.0), "http_500"),
        (FakeServerConfig(malformed_fraction=1.0), "malformed_json"),
        (FakeServerConfig(cut_fraction=1.0), "stream_cut"),
    ],
)
def test_every_request_failing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, config: FakeServerConfig, kind: str
) -> None:
    with serve_in_thread(config) as srv:
        argv = [
            "--base-url",
            srv.base_url,
            *FIXED,
            "--num-prompts",
            "6",
            "--save-result",
            "--result-dir",
            str(tmp_path),
            "--result-filename",
            "r.json",
        ]
        assert main(argv) == 1
    line = one_error_line(capsys)
    assert f"all 6 requests failed ({kind} x6)" in line
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["failed"] == 6 and summary["errors_by_kind"] == {kind: 6}


def test_some_requests_failing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with serve_in_thread(FakeServerConfig(fail_fraction=0.25)) as srv:
        base = [
            "--base-url",
            srv.base_url,
            *FIXED,
            "--num-prompts",
            "20",
            "--save-result",
            "--result-dir",
            str(tmp_path),
            "--result-filename",
            "r.json",
        ]
        assert main(base) == 3
        assert "5 of 20 requests failed" in one_error_line(capsys)
        assert main([*base, "--max-failed-fraction", "0.3"]) == 0
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["completed"] == 15 and summary["failed"] == 5
    assert summary["errors_by_kind"] == {"http_500": 5}
    assert summary["http_status_counts"] == {"200": 15, "500": 5}
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and sum(r["status"] == "failed" for r in rows) == 5


def test_ctrl_c_writes_what_completed(tmp_path: Path) -> None:
    slow = FakeServerConfig(tokens=10, token_delay_s=0.02)
    with serve_in_thread(slow) as srv:
        argv = [
            sys.executable,
            "-m",
            "enginebench",
            "bench",
            "--base-url",
            srv.base_url,
            *FIXED,
            "--fixed-output-len",
            "10",
            "--num-prompts",
            "400",
            "--request-rate",
            "20",
            "--save-result",
            "--result-dir",
            str(tmp_path),
            "--result-filename",
            "r.json",
        ]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while srv.stats.requests < 15 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    summary = json.loads((tmp_path / "r.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert summary["interrupted"] is True
    assert 0 < summary["completed"] == len(rows) < 400
    assert all(r["status"] == "ok" for r in rows)


def test_per_request_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with serve_in_thread(FakeServerConfig(tokens=4, token_delay_s=0.2)) as srv:
        argv = ["--base-url", srv.base_url, *FIXED, "--num-prompts", "3", "--timeout", "0.3"]
        assert main(argv) == 1
    assert "all 3 requests failed (timeout x3)" in one_error_line(capsys)
