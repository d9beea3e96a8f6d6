"""A sweep's load generator forked from the sweep (enginebench.benchproc): the same `enginebench
bench` run on the same argv as a new interpreter would, without its imports each point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from enginebench import benchproc
from tests.fixtures.fakeserver import FakeServerConfig, serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
FIXED = ["--model", "fake-model", "--dataset-name", "fixed", "--fixed-output-len", "4"]

# a one-thread program that runs points as a sweep does (as Snakemake runs the sweep's script)
SCRIPT = """\
import signal, sys, time
from enginebench import benchproc
print("script body ran", flush=True)
benchproc.preload(None)
url, out = sys.argv[1], sys.argv[2]
bench = [sys.executable, "-m", "enginebench", "bench", "--base-url", url, *{fixed!r},
         "--save-result", "--result-dir", out, "--disable-tqdm"]
# an open loop over two spawned workers
p = benchproc.launch([*bench, "--num-prompts", "40", "--request-rate", "200",
                      "--num-workers", "2", "--result-filename", "workers.json"])
print(type(p).__name__, p.wait(), flush=True)
# Ctrl-C mid-point, as the sweep stops a point whose server died
p = benchproc.launch([*bench, "--num-prompts", "400", "--request-rate", "20",
                      "--result-filename", "cut.json"])
time.sleep(3)
p.send_signal(signal.SIGINT)
print(type(p).__name__, p.wait(timeout=60), flush=True)
"""


def test_points_forked_from_a_one_thread_program(tmp_path: Path) -> None:
    script = tmp_path / "sweep_like.py"
    script.write_text(SCRIPT.format(fixed=FIXED))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with serve_in_thread(FakeServerConfig(tokens=4, token_delay_s=0.005)) as srv:
        done = subprocess.run([sys.executable, str(script), srv.base_url, str(tmp_path)],
                              capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    lines = done.stdout.splitlines()
    # the workers (spawned) did not run the program again: its body ran once
    assert lines.count("script body ran") == 1, done.stdout + done.stderr
    assert [x for x in lines if x.startswith("Forked")] == ["Forked 0", "Forked 130"], done.stderr
    workers = json.loads((tmp_path / "workers.json").read_text())
    assert workers["completed"] == 40 and workers["num_workers"] == 2
    # interrupted: what completed is written, as by `python -m enginebench bench`
    cut = json.loads((tmp_path / "cut.json").read_text())
    rows = (tmp_path / "cut.jsonl").read_text().splitlines()
    assert cut["interrupted"] is True and 0 < cut["completed"] == len(rows) < 400


def test_a_new_process_otherwise(tmp_path: Path) -> None:
    # not this interpreter's `-m enginebench`: started as it is
    p = benchproc.launch([sys.executable, "-c", "raise SystemExit(3)"])
    assert isinstance(p, subprocess.Popen) and p.wait(timeout=30) == 3
    # a program with other threads does not fork (their locks would stay held in the child)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        p = benchproc.launch([sys.executable, "-m", "enginebench", "bench", "--help"])
        assert isinstance(p, subprocess.Popen)
        assert p.wait(timeout=60) == 0
    finally:
        stop.set()
        other.join()
