"""A full disk, for real: a size-limited tmpfs mounted for the test (root only, as on this
project's machines and CI; elsewhere the tests say why they cannot run)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from enginebench.jsonfile import WriteFailed, write_text
from enginebench.loadgen.errors import EXIT_UNWRITABLE
from enginebench.points import SweepPoint
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread
from tests.test_sweep_serve import _cfg, _fake_engine, _run, prompts_file  # noqa: F401


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 KiB filesystem: room for one small file, not for a point's records."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mnt)])
    if done.returncode != 0:
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_failed_write_leaves_nothing_and_says_what_it_needed(full_disk: Path) -> None:
    write_text(full_disk / "small.txt", "x" * 100)
    with pytest.raises(WriteFailed) as err:
        write_text(full_disk / "big.json", "x" * 100_000)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"cannot write {full_disk / 'big.json'}: ")
    assert "No space left on device" in line and "100,000 bytes to write" in line
    assert sorted(p.name for p in full_disk.iterdir()) == ["small.txt"]  # no .tmp left


def test_bench_on_a_full_disk_fails_in_one_line_and_records_nothing(full_disk: Path) -> None:
    with serve_in_thread(FakeServerConfig(model="fake")) as srv:
        argv = [sys.executable, "-m", "enginebench", "bench", "--base-url", srv.base_url,
                "--model", "fake", "--dataset-name", "fixed", "--fixed-output-len", "16",
                "--num-prompts", "200", "--request-rate", "inf", "--save-result",
                "--result-dir", str(full_disk), "--result-filename", "p.json"]  # fmt: skip
        t0 = time.monotonic()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_UNWRITABLE and time.monotonic() - t0 < 60
    errors = [ln for ln in done.stderr.splitlines() if "error" in ln.lower()]
    assert errors == [e for e in errors if e.startswith("enginebench bench: error: cannot write")]
    assert len(errors) == 1 and "No space left on device" in errors[0]
    assert "Traceback" not in done.stderr
    assert list(full_disk.iterdir()) == []  # no summary, no records, no temporary file


def test_a_sweep_on_a_full_disk_stops_with_one_line_and_no_server_left(
    full_disk: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    prompts_file: Path,  # noqa: F811
    tiny_model_dir: Path,
) -> None:
    pts = [SweepPoint("rate", math.inf, 16), SweepPoint("concurrency", 1.0, 4)]
    out = full_disk / "out"
    cfg = _cfg(tmp_path, engine="fake", model="tiny", prompts_file=str(prompts_file),
               tokenizer=str(tiny_model_dir), points=pts, out_dir=str(out))  # fmt: skip
    t0 = time.monotonic()
    # the first point cannot be recorded (the sweep stops: no later point could be either),
    # nor then can server.json: the job's one line names it (run_job adds where it kept what
    # completed)
    with pytest.raises(WriteFailed, match=f"cannot write {out / 'server.json'}: No space left"):
        _run(monkeypatch, _fake_engine(tmp_path), cfg)
    assert time.monotonic() - t0 < 60
    assert "rate-inf: its results could not be written" in capsys.readouterr().err
    assert not [p for p in out.iterdir() if p.suffix in (".json", ".jsonl", ".tmp")]
    me = psutil.Process()
    assert not [c for c in me.children(recursive=True) if "fakeserver" in " ".join(c.cmdline())]
